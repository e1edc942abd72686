import { Flags, NetlinkSocket, Protocol, RawNetlinkSocket, RtNetlinkSocket, checkError, formatMessage, pad, type NetlinkMessage } from "netlink";

/** An rtnetlink request whose only answer is the kernel's acknowledgement, such as RTM_NEWADDR: type, flags and body. */
export interface NetlinkChange {
  readonly type: number;
  readonly flags: number;
  readonly body: readonly Uint8Array[];
}

/** undefined once the kernel has made the change; its refusal, or the socket's failure, otherwise. */
type Settle = (error: Error | undefined) => void;

/** The library's socket, told to hand the answers to our own sequence numbers to us rather than emit them. */
class AnsweringSocket extends NetlinkSocket {
  expect(seq: number, onAnswer: (message: NetlinkMessage | undefined) => void): void {
    this.makeRef(seq, (_error, messages) => onAnswer(messages?.[0]));
  }

  forget(seq: number): void {
    if (this.requests.has(seq)) this.dropRef(seq);
  }
}

/**
 * One rtnetlink socket, opened at first use, whose requests take turns: the kernel runs one dump per socket at a time
 * (EBUSY, or interleaved replies).
 *
 * A Master renews each VIP's lease at every advert, and a round trip per renewal was most of its CPU. So changes asked
 * for while others are with the kernel wait for them and then go out together, in one sendmsg, and only the last asks
 * for an acknowledgement: the kernel handles a datagram's messages in order and answers a failed one at once, asked or
 * not, so the last one's answer means that every change before it that drew no error was made.
 */
export class RtNetlinkQueue {
  #socket: AnsweringSocket | undefined;
  #rt: RtNetlinkSocket | undefined;
  #tail: Promise<unknown> = Promise.resolve();
  /** Changes that go out with the next batch. */
  #waiting: { readonly change: NetlinkChange; readonly settle: Settle }[] | undefined;
  /** The batch with the kernel, by sequence number; the answer to its last one ends it. */
  readonly #sent = new Map<number, Settle>();
  #batchAnswered: (() => void) | undefined;

  /** Runs `use` once the requests before it are done. */
  request<T>(use: (rt: RtNetlinkSocket) => Promise<T>): Promise<T> {
    const result = this.#tail.then(() => use(this.socket().rt));
    this.#tail = result.catch(() => undefined);
    return result;
  }

  change(change: NetlinkChange): Promise<Error | undefined> {
    return new Promise((settle) => {
      const waiting = this.#waiting;
      if (waiting !== undefined && waiting.length < maxBatch) {
        waiting.push({ change, settle });
        return;
      }
      const batch = [{ change, settle }];
      this.#waiting = batch;
      void this.request(() => {
        if (this.#waiting === batch) this.#waiting = undefined;
        return this.send(batch);
      });
    });
  }

  /** Changes still with the kernel fail, so that nothing waits for a socket that no longer answers. */
  close(): void {
    this.endBatch(new Error("the netlink socket was closed before the kernel answered"));
    this.#socket?.close();
    this.#socket = undefined;
    this.#rt = undefined;
  }

  /** Resolves once the kernel has answered the last change of the batch, or the socket failed or closed. */
  private send(batch: readonly { readonly change: NetlinkChange; readonly settle: Settle }[]): Promise<void> {
    const { socket } = this.socket();
    const port = socket.socket.address().port;
    const numbered = batch.map((entry) => ({ ...entry, seq: socket.generateSeq() }));
    const lastSeq = numbered.at(-1)?.seq;
    const messages = numbered.flatMap(({ change, settle, seq }) => {
      this.#sent.set(seq, settle);
      socket.expect(seq, (answer) => {
        socket.forget(seq);
        this.#sent.delete(seq);
        settle(answer === undefined ? new Error("the kernel's answer was not a netlink message") : refusalOf(answer));
        if (seq === lastSeq) this.endBatch(undefined);
      });
      const flags = change.flags | Flags.REQUEST | (seq === lastSeq ? Flags.ACK : 0);
      return pad(formatMessage({ type: change.type, flags, seq, port, data: [...change.body] }));
    });
    return new Promise((answered) => {
      this.#batchAnswered = answered;
      socket.socket.send(messages, {}, (error) => {
        if (error !== undefined) this.endBatch(error);
      });
    });
  }

  /** Settles the changes of the batch not yet answered with `error` (undefined: made). */
  private endBatch(error: Error | undefined): void {
    for (const [seq, settle] of this.#sent) {
      this.#socket?.forget(seq);
      settle(error);
    }
    this.#sent.clear();
    const answered = this.#batchAnswered;
    this.#batchAnswered = undefined;
    answered?.();
  }

  private socket(): { readonly socket: AnsweringSocket; readonly rt: RtNetlinkSocket } {
    if (this.#socket === undefined || this.#rt === undefined) {
      this.#socket = new AnsweringSocket(new RawNetlinkSocket(Protocol.ROUTE));
      this.#rt = new RtNetlinkSocket(this.#socket);
    }
    return { socket: this.#socket, rt: this.#rt };
  }
}

/** At most this many changes in one sendmsg, so that all their error answers fit the socket's receive buffer. */
const maxBatch = 32;

/** The kernel's refusal in an NLMSG_ERROR answer, in the words the library uses for its own requests; undefined for an acknowledgement. */
function refusalOf(answer: NetlinkMessage): Error | undefined {
  try {
    checkError(answer);
    return undefined;
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  }
}
