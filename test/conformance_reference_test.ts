/**
 * @module
 * The shared conformance suite on the reference backend (the oracle).
 */
import { referenceFactory } from "../src/reference/mod.ts";
import { runConformance } from "./conformance/runner.ts";

runConformance(referenceFactory);
