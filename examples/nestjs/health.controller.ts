/**
 * `GET /health`: @nestjs/terminus's `HealthCheckService` with rxamqp's `RxAmqpHealthIndicator`: 200
 * with `rabbitmq: { status: 'up' }` while the connection is open and not blocked by a resource alarm,
 * 503 otherwise.
 */
import { Controller, Get, Inject } from '@nestjs/common';
import { HealthCheck, type HealthCheckResult, HealthCheckService } from '@nestjs/terminus';
import { RxAmqpHealthIndicator } from 'rxamqp/nestjs';

@Controller('health')
export class HealthController {
  constructor(
    @Inject(HealthCheckService) private readonly health: HealthCheckService,
    @Inject(RxAmqpHealthIndicator) private readonly rabbitmq: RxAmqpHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check(): Promise<HealthCheckResult> {
    return this.health.check([() => this.rabbitmq.isHealthy('rabbitmq')]);
  }
}
