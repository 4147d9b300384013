/**
 * Structured logger: one JSON line per event (or a readable text line), with a stable `event`
 * name from events.ts. Writes synchronously to a file descriptor-backed stream so a crash
 * never loses the lines before it; callers on hot paths check `enabled(level)` first.
 */
import type { LogEventName } from './events.js';

export const LOG_LEVELS = ['debug', 'info', 'notice', 'warning', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
const RANK: Record<LogLevel, number> = { debug: 0, info: 1, notice: 2, warning: 3, error: 4 };

export interface LogSink {
  write(line: string): void;
}

export type LogFields = Record<string, unknown>;

export class Logger {
  private threshold: number;
  constructor(
    level: LogLevel = 'notice',
    private readonly sink: LogSink = { write: (line) => process.stdout.write(line) },
    private readonly format: 'json' | 'text' = 'json',
  ) {
    this.threshold = RANK[level];
  }

  setLevel(level: LogLevel): void {
    this.threshold = RANK[level];
  }

  enabled(level: LogLevel): boolean {
    return RANK[level] >= this.threshold;
  }

  log(level: LogLevel, event: LogEventName, fields?: LogFields): void {
    if (RANK[level] < this.threshold) return;
    const time = new Date().toISOString();
    if (this.format === 'json') {
      this.sink.write(JSON.stringify({ time, level, event, ...fields }, jsonSafe) + '\n');
    } else {
      let line = `${time} [${level}] ${event}`;
      if (fields) for (const k in fields) line += ` ${k}=${textValue(fields[k])}`;
      this.sink.write(line + '\n');
    }
  }

  debug(event: LogEventName, fields?: LogFields): void { this.log('debug', event, fields); }
  info(event: LogEventName, fields?: LogFields): void { this.log('info', event, fields); }
  notice(event: LogEventName, fields?: LogFields): void { this.log('notice', event, fields); }
  warning(event: LogEventName, fields?: LogFields): void { this.log('warning', event, fields); }
  error(event: LogEventName, fields?: LogFields): void { this.log('error', event, fields); }
}

function jsonSafe(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Error) return value.message;
  return value;
}

function textValue(v: unknown): string {
  if (typeof v === 'string') return /\s/.test(v) ? JSON.stringify(v) : v;
  return JSON.stringify(v, jsonSafe);
}

/** A logger that keeps lines in memory (tests). */
export class MemoryLogSink implements LogSink {
  readonly lines: string[] = [];
  write(line: string): void {
    this.lines.push(line);
  }
  records(): Array<Record<string, unknown>> {
    return this.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  }
}
