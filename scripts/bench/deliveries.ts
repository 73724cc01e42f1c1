/**
 * GitHub's side of the webhook in a burst, as production has it: GitHub records every delivery with
 * its outcome and never delivers again by itself; the reconciler, scheduled every minute, reads the
 * failed deliveries and asks GitHub to redeliver them, which GitHub does to the webhook with the
 * same delivery id.
 *
 * GitHub also fails a delivery not answered within 10 s. That rule is not applied here: one webhook
 * environment answers the whole burst (Lambda would scale out) on a scaled clock, so a delivery's
 * answer time is mostly its wait for that thread, not what GitHub would see. Such answers are counted
 * (`slowAnswers`); a webhook starved for real fails on its own 10 s timeouts and answers 5xx.
 */
import type { ScheduledEvent } from "aws-lambda";
import type { Delivery } from "../../test/sandbox/github-state";
import type { ReconcilerLambda, WebhookLambda, World } from "./world";

/** GitHub's timeout for an answer to a delivery. */
const GITHUB_DELIVERY_TIMEOUT_MS = 10_000;
/** The reconciler's EventBridge schedule: every minute. */
const RECONCILE_EVERY_MS = 60_000;

export interface DeliveryStats {
  /** First deliveries lost on purpose before the webhook (scenario 3). */
  lost: number;
  /** Deliveries the webhook answered with an error, or never (first attempts and redeliveries). */
  failed: number;
  /** Redeliveries the reconciler asked for. */
  redelivered: number;
  /** Answers that came after GitHub's 10 s (on the thread every delivery shares; see above). */
  slowAnswers: number;
  /** Reconciler runs, and the ticks skipped because the previous run was still going. */
  reconcilerRuns: number;
  reconcilerSkipped: number;
}

export class WebhookDeliveries {
  readonly stats: DeliveryStats = {
    lost: 0,
    failed: 0,
    redelivered: 0,
    slowAnswers: 0,
    reconcilerRuns: 0,
    reconcilerSkipped: 0,
  };
  /** Job id → when its first delivery failed (sandbox clock). */
  readonly firstFailureAt = new Map<string, number>();
  private readonly inFlight: Promise<unknown>[] = [];
  private readonly stopRedeliveries: () => void;
  private timer?: ReturnType<typeof setInterval>;
  private reconciling = false;

  constructor(
    private readonly world: World,
    private readonly webhook: WebhookLambda,
    private readonly reconciler: ReconcilerLambda,
  ) {
    const github = world.github.state;
    this.stopRedeliveries = github.onRedelivery((attempt) => {
      this.stats.redelivered++;
      this.inFlight.push(this.send(attempt));
    });
  }

  /**
   * Delivers `payload` for the first time, as GitHub would; resolves with the status GitHub saw.
   * `lost`: the delivery fails before it reaches the webhook (say, API Gateway answers 502).
   */
  async deliver(payload: Record<string, unknown>, guid: string, lost = false): Promise<number> {
    const delivery = this.world.github.state.seedDelivery({
      guid,
      event: "workflow_job",
      action: "queued",
      installation_id: (payload.installation as { id?: number } | undefined)?.id ?? null,
      payload,
    });
    if (lost) {
      this.stats.lost++;
      return this.failed(delivery, 502);
    }
    return this.send(delivery);
  }

  /** Runs the reconciler every minute from now (one run at a time), until `stop()`. */
  startReconciler(): void {
    const run = async () => {
      if (this.reconciling) {
        this.stats.reconcilerSkipped++;
        return;
      }
      this.reconciling = true;
      this.stats.reconcilerRuns++;
      await this.reconciler.invoke(scheduledEvent()).catch(() => undefined);
      this.reconciling = false;
    };
    this.timer = setInterval(() => this.inFlight.push(run()), RECONCILE_EVERY_MS);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.stopRedeliveries();
    await Promise.all(this.inFlight);
  }

  /** One attempt: the webhook's answer becomes the delivery's recorded outcome. */
  private async send(delivery: Delivery): Promise<number> {
    const event = await this.world.signedEvent(delivery.payload, delivery.guid);
    const { result, ms } = await this.webhook
      .invokeTimed(event)
      .catch(() => ({ result: { statusCode: 502 }, ms: 0 }));
    const status = result.statusCode ?? 502;
    if (ms > GITHUB_DELIVERY_TIMEOUT_MS) this.stats.slowAnswers++;
    if (status < 200 || status >= 300) {
      this.stats.failed++;
      return this.failed(delivery, status);
    }
    Object.assign(delivery, { status: "OK", status_code: status, duration: ms / 1000 });
    return status;
  }

  /** Records a failed attempt as GitHub shows it; returns its status. */
  private failed(delivery: Delivery, status: number): number {
    const jobId = String((delivery.payload.workflow_job as { id?: number } | undefined)?.id ?? "");
    if (!this.firstFailureAt.has(jobId)) this.firstFailureAt.set(jobId, this.world.sandbox.clock.now());
    Object.assign(delivery, { status: `Invalid HTTP Response: ${status}`, status_code: status });
    return status;
  }
}

/** What EventBridge hands the reconciler on its schedule. */
export function scheduledEvent(): ScheduledEvent {
  return {
    version: "0",
    id: crypto.randomUUID(),
    "detail-type": "Scheduled Event",
    source: "aws.events",
    account: "123456789012",
    time: new Date().toISOString(),
    region: "us-east-1",
    resources: ["arn:aws:events:us-east-1:123456789012:rule/bench-reconcile"],
    detail: {},
  };
}
