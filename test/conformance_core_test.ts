/**
 * @module
 * The shared conformance suite on the core (KVM's machinery in typed arrays). No skips.
 */
import { coreFactory } from "../src/core/mod.ts";
import { runConformance } from "./conformance/runner.ts";

runConformance(coreFactory);
