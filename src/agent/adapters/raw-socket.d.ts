// raw-socket 1.8.1 ships no types; this declares only the part the adapters use.
declare module "raw-socket" {
  import type { EventEmitter } from "node:events";

  export interface SocketOptions {
    readonly protocol?: number;
    readonly addressFamily?: number;
    readonly bufferSize?: number;
  }

  export interface Socket extends EventEmitter {
    on(event: "message", listener: (buffer: Buffer, source: string) => void): this;
    on(event: "error", listener: (error: Error) => void): this;
    setOption(level: number, option: number, value: number): void;
    setOption(level: number, option: number, value: Buffer, length: number): void;
    send(
      buffer: Buffer,
      offset: number,
      length: number,
      address: string,
      afterSend: (error: Error | null, bytes: number) => void,
    ): this;
    close(): this;
    /** Internal to raw-socket 1.8.1 (pinned): sends queued for the writable watcher. */
    readonly requests: readonly unknown[];
    /** Internal to raw-socket 1.8.1 (pinned): the addon's sendto, synchronous; throws with strerror's text. */
    readonly wrap: {
      send(buffer: Buffer, offset: number, length: number, address: string, afterSend: (bytes: number) => void): void;
      /** recvfrom into `buffer`, calling back synchronously; throws with strerror's text (EAGAIN when nothing waits). */
      recv(buffer: Buffer, onReceived: (buffer: Buffer, bytes: number, source: string) => void): void;
      on(event: "recvReady", listener: () => void): void;
    };
    /** Internal to raw-socket 1.8.1 (pinned): the receive buffer it reuses for every datagram. */
    readonly buffer: Buffer;
  }

  export const AddressFamily: { readonly IPv4: number; readonly IPv6: number };

  export function createSocket(options?: SocketOptions): Socket;
}
