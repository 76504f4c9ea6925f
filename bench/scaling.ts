/**
 * @module
 * Worker scaling of the fuzzer as users run it: `deno task fuzz --json` with one and
 * then two workers in one bench run, each over a scratch copy of the repository's
 * findings (so known signatures are not shrunk again and nothing is written to
 * `corpus/`). Then the control: two one-worker campaigns as separate processes at the
 * same time (seeds 1 and 2), which share nothing but the machine. Their sum over the
 * one-worker figure is what this machine gives this workload on two cores; the
 * two-worker figure over that sum is how much of it the Workers keep. Reports each
 * run's `opsPerSec` and the ratios. No timing is asserted: this prints figures.
 */
import { join } from "node:path";

/** One campaign's figures. */
export interface ScalingRun {
  workers: number;
  opsPerSec: number;
  runs: number;
  seconds: number;
}

/** The scaling measurement. */
export interface Scaling {
  seconds: number;
  /** 1 worker, 2 workers, then the two concurrent 1-worker processes. */
  runs: ScalingRun[];
  /** Ops/s with 2 workers over ops/s with 1. */
  ratio: number;
  /** Summed ops/s of two concurrent 1-worker processes over ops/s with 1. */
  processRatio: number;
  /** Ops/s with 2 workers over the two processes' sum. */
  efficiency: number;
}

async function campaign(root: string, workers: number, seconds: number, seed: number) {
  const dir = await Deno.makeTempDir({ prefix: "shadowfuzz-scaling-" });
  try {
    const findings = join(root, "corpus", "findings");
    await Deno.mkdir(join(dir, "findings"));
    for await (const e of Deno.readDir(findings)) {
      if (e.isFile && e.name.endsWith(".json")) {
        await Deno.copyFile(join(findings, e.name), join(dir, "findings", e.name));
      }
    }
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "task",
        "--quiet",
        "fuzz",
        "--seconds",
        String(seconds),
        "--workers",
        String(workers),
        "--seed",
        String(seed),
        "--corpus",
        dir,
        "--json",
      ],
      cwd: root,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout).trim();
    // Exit 1 only says a new finding appeared; the summary is still on stdout.
    if (out.code !== 0 && out.code !== 1) {
      throw new Error(
        `fuzz --workers ${workers} exited ${out.code}: ` +
          new TextDecoder().decode(out.stderr).trim().slice(0, 500),
      );
    }
    const s = JSON.parse(text) as { opsPerSec: number; runs: number; seconds: number };
    return { workers, opsPerSec: Math.round(s.opsPerSec), runs: s.runs, seconds: s.seconds };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * Runs the campaigns of `seconds` each: 1 worker, 2 workers (seed 1), then two 1-worker
 * processes at once (seeds 1 and 2).
 */
export async function fuzzScaling(seconds: number): Promise<Scaling> {
  const root = new URL("..", import.meta.url).pathname;
  const one = await campaign(root, 1, seconds, 1);
  const two = await campaign(root, 2, seconds, 1);
  const pair = await Promise.all([campaign(root, 1, seconds, 1), campaign(root, 1, seconds, 2)]);
  const sum = pair[0].opsPerSec + pair[1].opsPerSec;
  const r2 = (x: number) => Math.round(x * 100) / 100;
  return {
    seconds,
    runs: [one, two, ...pair],
    ratio: r2(two.opsPerSec / one.opsPerSec),
    processRatio: r2(sum / one.opsPerSec),
    efficiency: r2(two.opsPerSec / sum),
  };
}
