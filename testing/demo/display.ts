import { renderFrame, renderPanel, renderStatusLine, type Frame, type Palette } from "./view.js";

export interface Display {
  /** Starts redrawing; `frame` is asked for the current picture on every tick. */
  start(frame: () => Frame): void;
  /** A line that stays (a step's caption, a result), printed above the live table. */
  say(line: string): void;
  /** Draws the last frame once more and stops; idempotent. */
  stop(): void;
}

const ttyTickMs = 200;
const plainTickMs = 1_000;
const hideCursor = "\x1b[?25l";
const showCursor = "\x1b[?25h";

/**
 * On a terminal the table is redrawn in place (cursor up, clear to the end) about 5 times a second; on a pipe or a
 * file, redrawing would only repeat it, so a status line is appended once a second instead.
 */
export function createDisplay(out: NodeJS.WriteStream, palette: Palette): Display {
  return out.isTTY ? new LiveTable(out, palette) : new StatusLines(out, palette);
}

class LiveTable implements Display {
  #timer: NodeJS.Timeout | undefined;
  #frame: (() => Frame) | undefined;
  #drawnLines = 0;
  readonly #restoreCursor = (): void => { this.out.write(showCursor); };

  constructor(private readonly out: NodeJS.WriteStream, private readonly palette: Palette) {}

  start(frame: () => Frame): void {
    this.#frame = frame;
    this.out.write(hideCursor);
    // An exit on any path (an error, Ctrl-C) must not leave the user's terminal without a cursor.
    process.once("exit", this.#restoreCursor);
    this.#draw();
    this.#timer = setInterval(() => this.#draw(), ttyTickMs);
  }

  say(line: string): void {
    this.#erase();
    this.out.write(`${line}\n`);
    this.#draw();
  }

  stop(): void {
    if (this.#timer === undefined) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#draw();
    this.#frame = undefined;
    this.#drawnLines = 0;
    this.#restoreCursor();
    process.removeListener("exit", this.#restoreCursor);
  }

  #erase(): void {
    if (this.#drawnLines > 0) this.out.write(`\x1b[${this.#drawnLines}A\r\x1b[J`);
    this.#drawnLines = 0;
  }

  #draw(): void {
    if (this.#frame === undefined) return;
    const lines = renderFrame(this.#frame(), this.palette).map((line) => `  ${line}`);
    this.#erase();
    this.out.write(`${lines.join("\n")}\n`);
    this.#drawnLines = lines.length;
  }
}

class StatusLines implements Display {
  #timer: NodeJS.Timeout | undefined;
  #frame: (() => Frame) | undefined;
  #panelRevision: number | undefined;

  constructor(private readonly out: NodeJS.WriteStream, private readonly palette: Palette) {}

  start(frame: () => Frame): void {
    this.#frame = frame;
    this.#timer = setInterval(() => this.#print(), plainTickMs);
  }

  say(line: string): void {
    this.out.write(`${line}\n`);
  }

  stop(): void {
    if (this.#timer === undefined) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#print();
    this.#frame = undefined;
  }

  // The panel only when it says something new: a log that repeats the same command output every second says nothing.
  #print(): void {
    if (this.#frame === undefined) return;
    const frame = this.#frame();
    this.out.write(`${renderStatusLine(frame)}\n`);
    if (frame.panel === undefined || frame.panel.revision === this.#panelRevision) return;
    this.#panelRevision = frame.panel.revision;
    this.out.write(`${renderPanel(frame.panel, this.palette).join("\n")}\n`);
  }
}
