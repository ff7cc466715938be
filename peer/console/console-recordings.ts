import type { RecordingServer } from '../server/recording-server.ts'
import type { ConsoleRecordings } from './event-console.ts'

/** The event's server peer for recordings, as its console lists them and watches their storage. */
export function consoleRecordings(server: RecordingServer): ConsoleRecordings {
  return {
    list: async (max) =>
      (await server.list(max)).map((meta) => ({
        id: meta.id,
        state: meta.state,
        createdAt: meta.createdAt,
        bytes: meta.finalBytes ?? null,
        shareUrl: `${server.url}/v/${meta.shareId}`,
      })),
    storage: () => server.storage(),
  }
}
