/**
 * @module
 * The runs page: throughput, coverage and findings per campaign over time as SVG
 * charts, the table of runs, and the injected-bug self-test results when present.
 */
import type { FC } from "hono/jsx";
import type { RunRecord } from "../corpus/types.ts";
import type { FileError, SelfTest } from "../corpus/store.ts";
import { Layout, Time } from "./layout.tsx";
import { LineChart, type Point } from "./chart.tsx";
import { clipLine, formatFixed, formatInt, formatSeconds } from "./format.ts";

export interface RunsProps {
  runs: RunRecord[];
  errors: FileError[];
  selftest: SelfTest | null;
  selftestError: string | null;
}

function series(runs: RunRecord[], value: (r: RunRecord) => number, unit: string): Point[] {
  return runs.map((r) => {
    const x = Date.parse(r.time);
    const y = value(r);
    return { x, y, label: `${r.time} (seed ${clipLine(r.seed, 40)}): ${formatInt(y)} ${unit}` };
  });
}

export const RunsPageView: FC<RunsProps> = ({ runs, errors, selftest, selftestError }) => (
  <Layout title="Runs" section="runs">
    <h1>Campaign runs</h1>
    <div class="charts" id="charts">
      <LineChart
        title="Throughput"
        yLabel="ops/s"
        points={series(runs, (r) =>
          r.opsPerSec, "ops/s")}
      />
      <LineChart
        title="Coverage"
        integer
        yLabel="core events reached"
        points={series(runs, (r) =>
          r.coverage, "events")}
      />
      <LineChart
        title="Findings per run"
        integer
        yLabel="findings"
        points={series(runs, (r) => r.findings.length, "findings")}
      />
      <LineChart
        title="New findings per run"
        integer
        yLabel="new findings"
        points={series(runs, (r) => r.findings.filter((f) => f.new).length, "new findings")}
      />
    </div>

    <h2>Runs ({runs.length})</h2>
    <table id="runs">
      <thead>
        <tr>
          <th>Time</th>
          <th>Seed</th>
          <th>Backend</th>
          <th>Inject</th>
          <th class="num">Seconds</th>
          <th class="num">Workers</th>
          <th class="num">Runs</th>
          <th class="num">Ops</th>
          <th class="num">Ops/s</th>
          <th class="num">Coverage</th>
          <th class="num">Findings (new)</th>
        </tr>
      </thead>
      <tbody>
        {errors.map((e) => (
          <tr class="error">
            <td colspan={11}>
              Cannot read <code>runs/{e.file}</code>: {e.error}
            </td>
          </tr>
        ))}
        {[...runs].reverse().map((r) => (
          <tr>
            <td>
              <Time iso={r.time} />
            </td>
            <td class="mono">{clipLine(r.seed, 40)}</td>
            <td>{r.backend}</td>
            <td class="mono">{clipLine(r.inject ?? "", 200)}</td>
            <td class="num">{formatFixed(r.seconds, 2)}</td>
            <td class="num">{formatInt(r.workers)}</td>
            <td class="num">{formatInt(r.runs)}</td>
            <td class="num">{formatInt(r.ops)}</td>
            <td class="num">{formatInt(r.opsPerSec)}</td>
            <td class="num">{formatInt(r.coverage)}</td>
            <td class="num">
              {formatInt(r.findings.length)} ({formatInt(r.findings.filter((f) => f.new).length)})
            </td>
          </tr>
        ))}
      </tbody>
    </table>

    <h2>Injected-bug self-test</h2>
    {selftestError !== null
      ? <p class="alert" id="selftest-error">Cannot read selftest.json: {selftestError}</p>
      : selftest === null
      ? (
        <p class="muted" id="selftest-none">
          No self-test results (<code>corpus/selftest.json</code>) yet.
        </p>
      )
      : (
        <>
          <p id="selftest-summary">
            Found {selftest.found} of {selftest.total} injected bugs; median time to find{" "}
            {selftest.medianSeconds === null ? "n/a" : formatSeconds(selftest.medianSeconds)}; run
            at <Time iso={selftest.time} />.
          </p>
          <table id="selftest">
            <thead>
              <tr>
                <th>Bug</th>
                <th>Found</th>
                <th class="num">Seconds</th>
                <th class="num">Minimized ops</th>
              </tr>
            </thead>
            <tbody>
              {selftest.bugs.map((b) => (
                <tr class={b.found ? undefined : "error"}>
                  <td class="mono">{clipLine(b.name, 200)}</td>
                  <td>{b.found ? "yes" : "no"}</td>
                  <td class="num">{b.seconds === null ? "" : formatFixed(b.seconds, 2)}</td>
                  <td class="num">{b.minimizedOps === null ? "" : formatInt(b.minimizedOps)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
  </Layout>
);
