import { CrowdmeshError } from '../../peer/protocol/errors.ts'
import { runNodeParticipant } from '../../peer/mesh/node-participant.ts'
import { releaseWebRTC } from '../../peer/mesh/node-webrtc.ts'
import { type LiarModel, lyingWorkers } from './lying-worker.ts'

/*
 * A Node participant that lies (`lyingWorkers`), run as `ParticipantProcess`'s `entry`: the link,
 * then options as JSON ({ model, honestFirst, dutyCycle, cores }); JSON lines of its events out.
 */
const [link = '', text = '{}'] = process.argv.slice(2)
const { model, honestFirst, ...options } = JSON.parse(text) as {
  model: LiarModel
  honestFirst?: number
  dutyCycle?: number
  cores?: number
}
const controller = new AbortController()
process.once('SIGTERM', () => controller.abort())
try {
  const result = await runNodeParticipant({
    link,
    ...options,
    workers: (base) => lyingWorkers(base, model, honestFirst === undefined ? {} : { honestFirst }),
    signal: controller.signal,
    onEvent: (event) => process.stdout.write(`${JSON.stringify(event)}\n`),
  })
  process.stdout.write(`${JSON.stringify({ type: 'done', ...result })}\n`)
} catch (error) {
  if (!(error instanceof CrowdmeshError)) throw error
  process.stdout.write(`${JSON.stringify({ type: 'refused', name: error.name, message: error.message })}\n`)
  process.exitCode = 1
} finally {
  await releaseWebRTC()
}
