/**
 * @module
 * A server-rendered SVG line chart with axes, ticks and labels, for the runs page.
 * No script runs in the browser: each point carries a `<title>` as its tooltip.
 */
import type { FC } from "hono/jsx";

/** One point: `x` is a time in ms since the epoch. */
export interface Point {
  x: number;
  y: number;
  /** Tooltip text; defaults to the time and value. */
  label?: string;
}

export interface ChartProps {
  title: string;
  yLabel: string;
  points: Point[];
  width?: number;
  height?: number;
  /** The values are counts: ticks step by whole numbers. */
  integer?: boolean;
}

// The right margin leaves room for half of the last time label.
const MARGIN = { left: 64, right: 40, top: 28, bottom: 44 };

/**
 * Round tick values from 0 to at least `max`: steps of 1, 2 or 5 times a power of
 * ten, about `count` of them.
 */
export function niceTicks(max: number, count = 5, integer = false): number[] {
  if (!(max > 0) || !Number.isFinite(max)) return [0, 1];
  const raw = integer ? Math.max(1, max / count) : max / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? 10 * power;
  const ticks: number[] = [];
  for (let v = 0; v < max + step / 2; v += step) ticks.push(Number(v.toPrecision(12)));
  if ((ticks[ticks.length - 1] ?? 0) < max) {
    ticks.push(Number((ticks.length * step).toPrecision(12)));
  }
  return ticks;
}

/** A number as a short axis label: 950, 1.2k, 3.4M. */
export function shortNumber(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e9) return `${trim(v / 1e9)}G`;
  if (a >= 1e6) return `${trim(v / 1e6)}M`;
  if (a >= 1e3) return `${trim(v / 1e3)}k`;
  return trim(v);
}

function trim(v: number): string {
  return String(Number(v.toFixed(v >= 100 || Number.isInteger(v) ? 0 : 1)));
}

/** A time as a short UTC axis label: `11-21 14:05`. */
export function shortTime(ms: number): string {
  return new Date(ms).toISOString().slice(5, 16).replace("T", " ");
}

export const LineChart: FC<ChartProps> = (props) => {
  const width = props.width ?? 560;
  const height = props.height ?? 240;
  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = height - MARGIN.top - MARGIN.bottom;
  const pts = [...props.points].filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y))
    .sort((a, b) => a.x - b.x);
  const yTicks = niceTicks(Math.max(0, ...pts.map((p) => p.y)), 5, props.integer ?? false);
  const yMax = yTicks[yTicks.length - 1] ?? 1;
  let xMin = pts[0]?.x ?? 0;
  let xMax = pts[pts.length - 1]?.x ?? 1;
  if (xMax === xMin) {
    // One point (or several at one time): centre it in a one-hour window.
    xMin -= 1_800_000;
    xMax += 1_800_000;
  }
  const sx = (x: number) => MARGIN.left + ((x - xMin) / (xMax - xMin)) * plotW;
  const sy = (y: number) => MARGIN.top + plotH - (y / yMax) * plotH;
  const xTickCount = Math.min(5, Math.max(2, pts.length));
  const xTicks = Array.from(
    { length: xTickCount },
    (_, i) => xMin + ((xMax - xMin) * i) / (xTickCount - 1),
  );
  const f = (n: number) => n.toFixed(1);
  const bottom = MARGIN.top + plotH;
  return (
    <svg
      class="chart"
      xmlns="http://www.w3.org/2000/svg"
      viewBox={`0 0 ${width} ${height}`}
      width={width}
      height={height}
      role="img"
      aria-label={props.title}
    >
      <title>{props.title}</title>
      <text class="title" x={MARGIN.left} y={18}>{props.title}</text>
      {yTicks.map((t) => (
        <g>
          <line
            x1={MARGIN.left}
            x2={width - MARGIN.right}
            y1={f(sy(t))}
            y2={f(sy(t))}
            stroke="#e3e7eb"
          />
          <text x={MARGIN.left - 6} y={f(sy(t) + 4)} text-anchor="end">{shortNumber(t)}</text>
        </g>
      ))}
      {xTicks.map((t) => (
        <g>
          <line x1={f(sx(t))} x2={f(sx(t))} y1={bottom} y2={bottom + 5} stroke="#555" />
          <text x={f(sx(t))} y={bottom + 18} text-anchor="middle">{shortTime(t)}</text>
        </g>
      ))}
      <line x1={MARGIN.left} x2={MARGIN.left} y1={MARGIN.top} y2={bottom} stroke="#555" />
      <line x1={MARGIN.left} x2={width - MARGIN.right} y1={bottom} y2={bottom} stroke="#555" />
      <text
        x={14}
        y={f(MARGIN.top + plotH / 2)}
        text-anchor="middle"
        transform={`rotate(-90 14 ${f(MARGIN.top + plotH / 2)})`}
      >
        {props.yLabel}
      </text>
      <text x={f(MARGIN.left + plotW / 2)} y={height - 6} text-anchor="middle">time (UTC)</text>
      {pts.length === 0
        ? (
          <text x={f(MARGIN.left + plotW / 2)} y={f(MARGIN.top + plotH / 2)} text-anchor="middle">
            no runs recorded yet
          </text>
        )
        : (
          <polyline
            fill="none"
            stroke="#1f5fbf"
            stroke-width="2"
            points={pts.map((p) => `${f(sx(p.x))},${f(sy(p.y))}`).join(" ")}
          />
        )}
      {pts.map((p) => (
        <circle cx={f(sx(p.x))} cy={f(sy(p.y))} r="3.5" fill="#1f5fbf">
          <title>{p.label ?? `${shortTime(p.x)}: ${p.y}`}</title>
        </circle>
      ))}
    </svg>
  );
};
