import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { type MatchQuery, ResultsStore } from '../../peer/pool/results-store.ts'
import { CrowdmeshError } from '../../peer/protocol/errors.ts'
import { parseCommand, stringOption, UsageError } from '../options.ts'

const help = `Usage: crowdmesh matches (--ugc ID | --ref ID | --owner NAME) [options]

Looks up match runs' results in a results store (the SQLite file result writers fill): the matches
of one user video, of one reference, or of every video an owner has on either side.

Options:
  --ugc ID        the matches of this user video
  --ref ID        the matches of this reference
  --owner NAME    the matches of this owner's videos, user or reference
  --store FILE    the results store                               [default: out/results.db]
  --json          print one JSON object: { matches: [{ ugcId, refId, ugcStart, ugcEnd, refStart,
                  refEnd, score, run, task, ugcOwner, refOwner }] }
  -h, --help      show this help
`

/** `crowdmesh matches`. */
export function matchesCommand(args: string[]): Promise<void> {
  const values = parseCommand(
    args,
    {
      ugc: { type: 'string' },
      ref: { type: 'string' },
      owner: { type: 'string' },
      store: { type: 'string' },
      json: { type: 'boolean' },
    },
    help,
  )
  if (values === undefined) return Promise.resolve()
  const asked = (['ugc', 'ref', 'owner'] as const).flatMap((key) => {
    const value = stringOption(values, key)
    return value === undefined ? [] : [{ [key]: value } as MatchQuery]
  })
  if (asked.length !== 1) throw new UsageError('give one of --ugc ID, --ref ID or --owner NAME')
  const path = resolve(stringOption(values, 'store') ?? 'out/results.db')
  if (!existsSync(path)) throw new CrowdmeshError(`no results store at ${path}`)
  const store = new ResultsStore(path)
  try {
    const matches = store.query(asked[0]!)
    if (values.json === true) {
      process.stdout.write(`${JSON.stringify({ matches })}\n`)
      return Promise.resolve()
    }
    for (const m of matches)
      process.stdout.write(
        `  ${m.ugcId} ${m.ugcStart.toFixed(2)}–${m.ugcEnd.toFixed(2)}  ${m.refId} ${m.refStart.toFixed(2)}–${m.refEnd.toFixed(2)}  score ${m.score.toFixed(3)}  (run ${m.run})\n`,
      )
    process.stdout.write(`${matches.length} matches\n`)
  } finally {
    store.close()
  }
  return Promise.resolve()
}
