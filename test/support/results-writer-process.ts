import { ResultsStore, type TaskResult } from '../../peer/pool/results-store.ts'

/*
 * A result writer in its own process, for the crash test: writes the batch on stdin (JSON) to the
 * store at argv[2], and SIGKILLs itself after `CROWDMESH_KILL_AFTER` tasks of it, mid-transaction.
 */

const chunks: Buffer[] = []
for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
const batch = JSON.parse(Buffer.concat(chunks).toString('utf8')) as TaskResult[]
const store = new ResultsStore(process.argv[2]!)
const killAfter = Number(process.env.CROWDMESH_KILL_AFTER ?? Number.POSITIVE_INFINITY)
let written = 0
const added = store.writeBatch(batch, () => {
  if (++written >= killAfter) process.kill(process.pid, 'SIGKILL')
})
store.close()
process.stdout.write(`${added}\n`)
