#!/usr/bin/env node
/**
 * The `crowdmesh` command line. Each command lives in `commands/` and has its own `--help`.
 */
import { releaseWebRTC } from '../peer/mesh/node-webrtc.ts'
import { CrowdmeshError } from '../peer/protocol/errors.ts'
import { benchCommand } from './commands/bench.ts'
import { evalCommand } from './commands/eval.ts'
import { fuzzCommand } from './commands/fuzz.ts'
import { joinCommand } from './commands/join.ts'
import { fingerprintCommand } from './commands/fingerprint.ts'
import { matchCommand } from './commands/match.ts'
import { matchEvalCommand } from './commands/match-eval.ts'
import { matchesCommand } from './commands/matches.ts'
import { runsCommand } from './commands/runs.ts'
import { recordCommand } from './commands/record.ts'
import { serveCommand } from './commands/serve.ts'
import { simulateCommand } from './commands/simulate.ts'
import { startCommand } from './commands/start.ts'
import { UsageError } from './options.ts'

interface Command {
  summary: string
  run(args: string[]): Promise<void>
}

const commands: Record<string, Command> = {
  start: {
    summary: 'run the vertex-colouring job with local participants and write its outcome',
    run: startCommand,
  },
  join: { summary: 'join a running event as a Node participant (CPU worker) by its link', run: joinCommand },
  eval: { summary: 'score the job on a calibrated data set, leaving views out', run: evalCommand },
  fingerprint: {
    summary: 'fingerprint videos on this machine (ffmpeg), one .cmfp file each',
    run: fingerprintCommand,
  },
  match: {
    summary: 'match user videos against references over the real mesh, with local participants',
    run: matchCommand,
  },
  matches: {
    summary: 'look up match results by user video, reference or owner in a results store',
    run: matchesCommand,
  },
  runs: {
    summary: 'match runs at scale: a durable task pool, restartable, results to writers, a dashboard',
    run: runsCommand,
  },
  'match-eval': {
    summary: 'score video matching on a data set with ground truth, and on edited copies (--edits)',
    run: matchEvalCommand,
  },
  simulate: {
    summary: 'simulate a whole event in virtual time with the real coordinator and a virtual crowd',
    run: simulateCommand,
  },
  serve: {
    summary: 'run the server peer for recordings: uploads while recording, playable at publish',
    run: serveCommand,
  },
  record: {
    summary: 'upload a media file as a recorder does, publish it, and print its share link',
    run: recordCommand,
  },
  fuzz: {
    summary: 'send hostile input to every listener of an event; check it stays up and leaks nothing',
    run: fuzzCommand,
  },
  bench: {
    summary: 'measure the worker, the aggregator and the whole job; write the figures as JSON',
    run: benchCommand,
  },
}

const usage = `crowdmesh — turn the devices of a crowd into one computer

Usage: crowdmesh <command> [options]

Commands:
${Object.entries(commands)
  .map(([name, c]) => `  ${name.padEnd(11)} ${c.summary}`)
  .join('\n')}

Run "crowdmesh <command> --help" for a command's options.
`

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage)
    return 0
  }
  if (name === '--version') {
    process.stdout.write('0.1.0\n')
    return 0
  }
  const command = commands[name]
  if (command === undefined) {
    process.stderr.write(`crowdmesh: unknown command "${name}"\n\n${usage}`)
    return 2
  }
  try {
    await command.run(rest)
    // A command that found a failure (fuzz, a check) sets the exit code itself.
    return typeof process.exitCode === 'number' ? process.exitCode : 0
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`crowdmesh ${name}: ${error.message}\nRun "crowdmesh ${name} --help" for usage.\n`)
      return 2
    }
    if (error instanceof CrowdmeshError) {
      process.stderr.write(`crowdmesh ${name}: ${error.message}\n`)
      return 1
    }
    throw error
  } finally {
    // Commands that used WebRTC leave its native threads running; the process would not exit.
    await releaseWebRTC()
  }
}

process.exitCode = await main(process.argv.slice(2))
