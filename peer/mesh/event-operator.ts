import { serveConsole } from '../console/console-routes.ts'
import { EventConsole, type EventHealth } from '../console/event-console.ts'
import type { Coordinator } from '../coordinator/coordinator.ts'
import { systemClock } from '../protocol/clock.ts'
import type { SignalingServer } from '../../signaling/server.ts'
import type { CoordinatorHost } from './coordinator-host.ts'
import { DedicatedDevices, type DedicatedLauncher } from './dedicated-devices.ts'
import { EventMetrics } from './event-metrics.ts'
import { ParticipantProcess } from './participant-process.ts'

/** What the operator's side of an event needs from the event. */
export interface OperatorPartsInit {
  event: string
  signaling: SignalingServer
  coordinator: Coordinator
  host: CoordinatorHost
  /** The label the host gives a participant of a link (its token's jti). */
  dedicatedLink: (link: string) => string
  dedicated?: { max: number; launch?: DedicatedLauncher; floors?: Record<string, number> }
  addressOf: (participantId: string) => string | undefined
  health: () => EventHealth
}

/**
 * The operator's side of an event (README, "The operator's console"): the console at the signaling
 * server's console link, the coordinator's Prometheus metrics at its `/metrics`, and dedicated
 * devices when asked for. `stop()` detaches all three and stops the dedicated participants.
 */
export function startOperatorParts(init: OperatorPartsInit): {
  console: EventConsole
  dedicated: DedicatedDevices | undefined
  stop(): Promise<void>
} {
  const { event, signaling, coordinator, host } = init
  const eventConsole = new EventConsole({
    event,
    coordinator,
    host,
    clock: systemClock,
    mintLink: (role, ttlSeconds) => signaling.mintLink(event, role, ttlSeconds),
    addressOf: init.addressOf,
    health: init.health,
  })
  const metrics = new EventMetrics(coordinator, host)
  const detachMetrics = signaling.attachMetrics(() => metrics.render())
  let dedicated: DedicatedDevices | undefined
  if (init.dedicated !== undefined && init.dedicated.max > 0) {
    // Their own link: the host labels them by it, so they are shown as dedicated and never counted
    // as crowd.
    const link = signaling.mintLink(event, 'participant')
    dedicated = new DedicatedDevices({
      coordinator,
      connected: () => host.connected(),
      clock: systemClock,
      link,
      label: init.dedicatedLink(link),
      max: init.dedicated.max,
      launch:
        init.dedicated.launch ?? ((joinLink) => new ParticipantProcess(joinLink, { dutyCycle: 1, cores: 1 })),
      ...(init.dedicated.floors !== undefined && { floors: init.dedicated.floors }),
    })
    eventConsole.attachDedicated(dedicated)
  }
  const detachConsole = signaling.attachConsole(event, {
    serve: (rest, request, response) => serveConsole(eventConsole, rest, request, response),
  })
  return {
    console: eventConsole,
    dedicated,
    async stop() {
      detachConsole()
      eventConsole.close()
      detachMetrics()
      metrics.close()
      await dedicated?.stop()
    },
  }
}
