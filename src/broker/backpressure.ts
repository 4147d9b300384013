/**
 * Publisher backpressure: a subscriber that cannot keep up slows the publishers that feed it,
 * as TCP would between two hosts, instead of the broker buffering for it without bound or
 * dropping what it acknowledged.
 *
 * When an online session's mqueue reaches `backpressure.hold_at` (its socket is above the
 * high watermark, or its inflight window is full), the publisher whose PUBLISH is being
 * routed at that moment stops reading its socket. It reads again when every session holding
 * it has drained to half of `hold_at`, or the session goes offline or ends.
 *
 * A subscriber that does not read at all must not stop every publisher: a session holds
 * publishers for at most `backpressure.max_hold` per episode. Past it, they are released and
 * the session is marked stalled; it holds nobody again until it has drained to half of
 * `hold_at`, and meanwhile its mqueue is bounded as before (`mqtt.max_mqueue_len`, oldest
 * dropped first, counted and logged).
 *
 * Cost when nothing is congested: the channel sets and clears `current` around each
 * broker.publish (two field writes); the session compares its queue length when it queues.
 */
import type { Logger } from '../observability/index.js';
import type { TimerEntry, TimerTask, TimerWheel } from './timer-wheel.js';

/** A publishing connection that can be held (implemented by the channel). */
export interface HoldablePublisher {
  readonly clientId: string;
  /** How many congested sessions hold it; reading resumes at 0. */
  heldBy: number;
  /** Stops (true) or resumes (false) reading from the socket. */
  holdReading(on: boolean): void;
}

/** A session as backpressure sees it. */
export interface CongestedSubscriber {
  readonly clientId: string;
  /** Set by Backpressure: the publishers it holds, null when it holds none. */
  holding: Set<HoldablePublisher> | null;
  /** Set by Backpressure when an episode passed max_hold; cleared by the session on draining. */
  stalled: boolean;
  /** Length of its mqueue, for the log line. */
  readonly queuedCount: number;
}

export interface BackpressureOptions {
  readonly enable: boolean;
  /** Online mqueue length at which publishers are held. */
  readonly holdAt: number;
  /** Longest hold per episode, ms. */
  readonly maxHold: number;
}

class Episode implements TimerTask {
  entry: TimerEntry | null = null;
  constructor(readonly owner: Backpressure, readonly session: CongestedSubscriber) {}
  onTimer(): void {
    this.entry = null;
    this.owner.expire(this);
  }
}

export class Backpressure {
  /** The publisher whose PUBLISH is being routed; null for wills, $SYS, the API, hooks. */
  current: HoldablePublisher | null = null;
  readonly enabled: boolean;
  readonly holdAt: number;
  /** Queue length at which a holding session releases its publishers (and a stalled one recovers). */
  readonly releaseAt: number;
  private readonly maxHold: number;
  private readonly episodes = new Map<CongestedSubscriber, Episode>();
  /** Publishers held, ever (metrics: `backpressure.held`). */
  holdCount = 0;
  /** Episodes that passed max_hold. */
  stallCount = 0;

  constructor(options: BackpressureOptions, private readonly wheel: TimerWheel, private readonly logger: Logger) {
    this.enabled = options.enable;
    this.holdAt = Math.max(1, options.holdAt);
    this.releaseAt = Math.floor(this.holdAt / 2);
    this.maxHold = options.maxHold;
  }

  /** The session's online queue reached holdAt while `current` was routing into it. */
  hold(session: CongestedSubscriber): void {
    const p = this.current;
    if (p === null || session.stalled || p.clientId === session.clientId) return;
    let set = session.holding;
    if (set === null) {
      set = session.holding = new Set();
      const ep = new Episode(this, session);
      ep.entry = this.wheel.schedule(ep, this.maxHold);
      this.episodes.set(session, ep);
    } else if (set.has(p)) {
      return;
    }
    set.add(p);
    this.holdCount++;
    if (p.heldBy++ === 0) p.holdReading(true);
  }

  /** The session drained to releaseAt, went offline or ended: its publishers may read again. */
  release(session: CongestedSubscriber): void {
    const set = session.holding;
    if (set === null) return;
    session.holding = null;
    const ep = this.episodes.get(session);
    if (ep !== undefined) {
      this.episodes.delete(session);
      this.wheel.cancel(ep.entry);
    }
    for (const p of set) {
      if (--p.heldBy === 0) p.holdReading(false);
    }
  }

  /** An episode passed max_hold: release and mark the session stalled. */
  expire(ep: Episode): void {
    const session = ep.session;
    if (this.episodes.get(session) !== ep) return;
    this.stallCount++;
    this.logger.warning('subscriber_stalled', {
      clientid: session.clientId,
      queued: session.queuedCount,
      held_publishers: session.holding?.size ?? 0,
      max_hold_ms: this.maxHold,
      effect: 'publishers released; its mqueue drops oldest when full until it drains',
    });
    this.release(session);
    session.stalled = true;
  }
}
