import type {
  AddressWatcher,
  AdvertTransport,
  Clock,
  InterfaceAddress,
  LinkMonitor,
  NeighborAnnouncer,
  Outcome,
  ReceivedDatagram,
  SendFailure,
  SetupFailure,
  OutcomeWithValue,
  VipManager,
} from "../../src/agent/ports.js";
import type { Milliseconds, Seconds } from "../../src/vrrp/units.js";
import { FakeClock } from "./fake-clock.js";

/** The Clock port on a FakeClock: `advance` fires the one scheduled callback once its deadline has passed. */
export class FakeTimerClock extends FakeClock implements Clock {
  #scheduled: { readonly at: Milliseconds; readonly onDeadline: () => void } | undefined;

  schedule(at: Milliseconds, onDeadline: () => void): void {
    this.#scheduled = { at, onDeadline };
  }

  cancel(): void {
    this.#scheduled = undefined;
  }

  /** Announcement spacing is not what these tests are about: it passes at once. */
  wait(): Promise<void> {
    return Promise.resolve();
  }

  get scheduledAt(): Milliseconds | undefined {
    return this.#scheduled?.at;
  }

  override advance(by: number): Milliseconds {
    const now = super.advance(by);
    const due = this.#scheduled;
    if (due !== undefined && due.at <= now) {
      this.#scheduled = undefined;
      due.onDeadline();
    }
    return now;
  }
}

export class FakeTransport implements AdvertTransport {
  readonly sent: { readonly message: Uint8Array; readonly destination: string }[] = [];
  #onDatagram: ((datagram: ReceivedDatagram) => void) | undefined;
  isStopped = false;

  /** `startFailure`: what start() answers instead of opening, as a socket the kernel refuses. */
  constructor(private readonly startFailure?: { readonly ok: false; readonly code: SetupFailure; readonly detail: string }) {}

  async start(onDatagram: (datagram: ReceivedDatagram) => void): Promise<Outcome<SetupFailure>> {
    if (this.startFailure !== undefined) return this.startFailure;
    this.#onDatagram = onDatagram;
    return { ok: true };
  }

  async send(message: Uint8Array, destination: string): Promise<Outcome<SendFailure>> {
    this.sent.push({ message, destination });
    return { ok: true };
  }

  deliver(datagram: ReceivedDatagram): void {
    if (this.#onDatagram === undefined) throw new Error("FakeTransport: deliver() before start()");
    this.#onDatagram(datagram);
  }

  stop(): void {
    this.isStopped = true;
  }
}

export class FakeVipManager implements VipManager {
  readonly #addresses = new Map<string, InterfaceAddress[]>();
  readonly log: string[] = [];

  constructor(initial: Record<string, InterfaceAddress[]> = {}) {
    for (const [ifname, addresses] of Object.entries(initial)) this.#addresses.set(ifname, [...addresses]);
  }

  #addsHeldUntil: Promise<void> | undefined;

  /** Adds wait until the returned function is called: a slow netlink round trip, to test the order of changes. */
  holdAdds(): () => void {
    let release = (): void => undefined;
    this.#addsHeldUntil = new Promise((resolve) => {
      release = resolve;
    });
    return release;
  }

  async add(vip: InterfaceAddress, ifname: string, lease: Seconds): Promise<Outcome<SetupFailure>> {
    await this.#addsHeldUntil;
    const list = this.#addresses.get(ifname) ?? [];
    if (!list.some((address) => address.address === vip.address)) list.push(vip);
    this.#addresses.set(ifname, list);
    this.log.push(`add ${vip.address}/${vip.prefixLength} ${ifname} lease ${lease} s`);
    return { ok: true };
  }

  async remove(vip: InterfaceAddress, ifname: string): Promise<Outcome<SetupFailure>> {
    this.#addresses.set(ifname, (this.#addresses.get(ifname) ?? []).filter((address) => address.address !== vip.address));
    this.log.push(`remove ${vip.address} ${ifname}`);
    return { ok: true };
  }

  async list(ifname: string): Promise<OutcomeWithValue<readonly InterfaceAddress[], SetupFailure>> {
    return { ok: true, value: [...(this.#addresses.get(ifname) ?? [])] };
  }

  holds(address: string, ifname: string): boolean {
    return (this.#addresses.get(ifname) ?? []).some((entry) => entry.address === address);
  }

  stop(): void {}
}

/** Records announcements with whether the address was on the interface at that moment. */
export class FakeAnnouncer implements NeighborAnnouncer {
  readonly announced: { readonly address: string; readonly wasPresent: boolean }[] = [];

  constructor(private readonly vips: FakeVipManager) {}

  async announce(address: string, ifname: string): Promise<Outcome<SetupFailure>> {
    this.announced.push({ address, wasPresent: this.vips.holds(address, ifname) });
    return { ok: true };
  }
}

export class FakeLinkMonitor implements LinkMonitor {
  #isUp = true;
  #onChange: ((isUp: boolean) => void) | undefined;

  async start(onChange: (isUp: boolean) => void): Promise<Outcome<SetupFailure>> {
    this.#onChange = onChange;
    return { ok: true };
  }

  isUp(): boolean {
    return this.#isUp;
  }

  set(isUp: boolean): void {
    this.#isUp = isUp;
    this.#onChange?.(isUp);
  }

  stop(): void {}
}

/** The kernel's address notifications: `lose` plays one address leaving the interface without the agent. */
export class FakeAddressWatcher implements AddressWatcher {
  #onRemoved: ((address: InterfaceAddress) => void) | undefined;

  async start(onRemoved: (address: InterfaceAddress) => void): Promise<Outcome<SetupFailure>> {
    this.#onRemoved = onRemoved;
    return { ok: true };
  }

  lose(address: InterfaceAddress, vips: FakeVipManager, ifname: string): void {
    void vips.remove(address, ifname);
    this.#onRemoved?.(address);
  }

  stop(): void {
    this.#onRemoved = undefined;
  }
}
