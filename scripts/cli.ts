#!/usr/bin/env node
/**
 * The `crowdmesh` command line. Each command lives in `commands/` and has its own `--help`; each is
 * loaded only when run, so `crowdmesh join --help` does not load ffmpeg pipelines and libp2p.
 */
import { releaseWebRTC } from '../peer/mesh/node-webrtc.ts'
import { CrowdmeshError } from '../peer/protocol/errors.ts'
import { UsageError } from './options.ts'

interface Command {
  summary: string
  run(args: string[]): Promise<void>
}

const commands: Record<string, Command> = {
  start: {
    summary: 'run the vertex-colouring job with local participants and write its outcome',
    run: (args) => import('./commands/start.ts').then((m) => m.startCommand(args)),
  },
  join: {
    summary: 'join a running event as a Node participant (CPU worker) by its link',
    run: (args) => import('./commands/join.ts').then((m) => m.joinCommand(args)),
  },
  eval: {
    summary: 'score the job on a calibrated data set, leaving views out',
    run: (args) => import('./commands/eval.ts').then((m) => m.evalCommand(args)),
  },
  fingerprint: {
    summary: 'fingerprint videos on this machine (ffmpeg), one .cmfp file each',
    run: (args) => import('./commands/fingerprint.ts').then((m) => m.fingerprintCommand(args)),
  },
  match: {
    summary: 'match user videos against references over the real mesh, with local participants',
    run: (args) => import('./commands/match.ts').then((m) => m.matchCommand(args)),
  },
  matches: {
    summary: 'look up match results by user video, reference or owner in a results store',
    run: (args) => import('./commands/matches.ts').then((m) => m.matchesCommand(args)),
  },
  runs: {
    summary: 'match runs at scale: a durable task pool, restartable, results to writers, a dashboard',
    run: (args) => import('./commands/runs.ts').then((m) => m.runsCommand(args)),
  },
  'match-eval': {
    summary: 'score video matching on a data set with ground truth, and on edited copies (--edits)',
    run: (args) => import('./commands/match-eval.ts').then((m) => m.matchEvalCommand(args)),
  },
  simulate: {
    summary: 'simulate a whole event in virtual time with the real coordinator and a virtual crowd',
    run: (args) => import('./commands/simulate.ts').then((m) => m.simulateCommand(args)),
  },
  serve: {
    summary: 'run the server peer for recordings: uploads while recording, playable at publish',
    run: (args) => import('./commands/serve.ts').then((m) => m.serveCommand(args)),
  },
  record: {
    summary: 'upload a media file as a recorder does, publish it, and print its share link',
    run: (args) => import('./commands/record.ts').then((m) => m.recordCommand(args)),
  },
  fuzz: {
    summary: 'send hostile input to every listener of an event; check it stays up and leaks nothing',
    run: (args) => import('./commands/fuzz.ts').then((m) => m.fuzzCommand(args)),
  },
  bench: {
    summary: 'measure the worker, the aggregator and the whole job; write the figures as JSON',
    run: (args) => import('./commands/bench.ts').then((m) => m.benchCommand(args)),
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
