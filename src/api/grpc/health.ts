// grpc.health.v1.Health for the server ('') and lstm_trainer.v1.LstmTrainer: SERVING when the
// operator's flag is up (setServing; down while shutting down) AND the JobService answers (Redis
// reachable, re-checked every interval) — so it means what the HTTP /readyz means.
import type * as grpc from '@grpc/grpc-js';
import { HealthImplementation, type ServingStatus } from 'grpc-health-check';
import type { JobService } from '../../jobs/types.js';
import { SERVICE_NAME } from './proto.js';

export class ServiceHealth {
  private wanted = true;
  private checking = false;
  private readonly timer?: NodeJS.Timeout;

  private constructor(
    private readonly health: HealthImplementation,
    private ready: boolean,
    service: JobService,
    intervalMs: number,
  ) {
    if (intervalMs > 0) {
      this.timer = setInterval(() => {
        if (this.checking) return;
        this.checking = true;
        service
          .ready()
          .catch(() => false)
          .then((r) => {
            this.checking = false;
            if (r !== this.ready) {
              this.ready = r;
              this.publish();
            }
          });
      }, intervalMs);
      this.timer.unref();
    }
  }

  /** Adds the health service to `server`, its state read from `service` now and every intervalMs (0: never). */
  static async addTo(server: grpc.Server, service: JobService, intervalMs: number): Promise<ServiceHealth> {
    const ready = await service.ready().catch(() => false);
    const status: ServingStatus = ready ? 'SERVING' : 'NOT_SERVING';
    const impl = new HealthImplementation({ '': status, [SERVICE_NAME]: status });
    impl.addToServer(server);
    return new ServiceHealth(impl, ready, service, intervalMs);
  }

  setServing(serving: boolean): void {
    this.wanted = serving;
    this.publish();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private publish(): void {
    const status: ServingStatus = this.wanted && this.ready ? 'SERVING' : 'NOT_SERVING';
    this.health.setStatus('', status);
    this.health.setStatus(SERVICE_NAME, status);
  }
}
