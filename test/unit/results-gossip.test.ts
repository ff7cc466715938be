import { describe, expect, it } from 'vitest'
import {
  parseResultsMessage,
  parseWrittenMessage,
  type ResultsMessage,
  resultsKey,
  sealResults,
  toTaskResults,
} from '../../peer/pool/results-gossip.ts'
import { InvalidMessageError, MessageTooLargeError } from '../../peer/protocol/errors.ts'

/*
 * Match results on gossip (issue 15) are sealed for the result writers: only a holder of the
 * operator link's token opens them, a changed byte is refused, and what opens is checked like any
 * message from the network.
 */

const message: ResultsMessage = {
  type: 'results',
  results: [
    {
      task: 'demo/m/3/0',
      run: 'demo',
      generation: 1,
      matches: [
        { ugcId: 'a.mp4', refId: 'b.mp4', ugcStart: 0, ugcEnd: 12, refStart: 4, refEnd: 16, score: 0.93 },
      ],
    },
  ],
}
const bytes = (value: unknown) => new TextEncoder().encode(JSON.stringify(value))

describe('results on gossip', () => {
  const key = resultsKey('operator-token', 'event-1')

  it('open with the event’s results key only', () => {
    const sealed = sealResults(message, key)
    expect(parseResultsMessage(sealed, key)).toEqual(message)
    // Neither the match list nor a video id is readable on the wire.
    expect(new TextDecoder().decode(sealed)).not.toMatch(/a\.mp4|demo\/m/)
    expect(() => parseResultsMessage(sealed, resultsKey('participant-token', 'event-1'))).toThrow(
      InvalidMessageError,
    )
    expect(() => parseResultsMessage(sealed, resultsKey('operator-token', 'event-2'))).toThrow(
      InvalidMessageError,
    )
  })

  it('refuses a changed byte, a plain message, garbage and oversized messages', () => {
    const sealed = JSON.parse(new TextDecoder().decode(sealResults(message, key))) as {
      iv: string
      data: string
    }
    const flipped = sealed.data.slice(0, 10) + (sealed.data[10] === 'A' ? 'B' : 'A') + sealed.data.slice(11)
    expect(() =>
      parseResultsMessage(bytes({ ...sealed, type: 'sealed-results', data: flipped }), key),
    ).toThrow(InvalidMessageError)
    expect(() => parseResultsMessage(bytes(message), key)).toThrow(InvalidMessageError)
    expect(() => parseResultsMessage(new Uint8Array([1, 2, 3]), key)).toThrow(InvalidMessageError)
    expect(() => parseResultsMessage(new Uint8Array(2 * 1024 * 1024), key)).toThrow(MessageTooLargeError)
    // Sealed with the right key but not a results message inside.
    const other = sealResults({ type: 'results', results: [] } as unknown as ResultsMessage, key)
    expect(() => parseResultsMessage(other, key)).toThrow(InvalidMessageError)
  })

  it('bounds acknowledgements', () => {
    const a = { task: 'a', generation: 1 }
    const b = { task: 'b', generation: 2 }
    expect(parseWrittenMessage(bytes({ type: 'written', tasks: [a, b] })).tasks).toEqual([a, b])
    expect(() => parseWrittenMessage(bytes({ type: 'written', tasks: [] }))).toThrow(InvalidMessageError)
    expect(() => parseWrittenMessage(bytes({ type: 'written', tasks: Array(257).fill(a) }))).toThrow(
      InvalidMessageError,
    )
    for (const bad of [
      { task: 'x'.repeat(300), generation: 1 },
      { task: 'a', generation: 0 },
      { task: 'a' },
      'a',
    ])
      expect(() => parseWrittenMessage(bytes({ type: 'written', tasks: [bad] }))).toThrow(InvalidMessageError)
  })

  it('carries a reopened task’s withdrawal and its next generation, and nothing else in their place', () => {
    const withdrawal: ResultsMessage = {
      type: 'results',
      results: [
        { task: 'demo/m/3/0', run: 'demo', generation: 1, withdrawn: true, matches: [] },
        { ...message.results[0]!, generation: 2 },
      ],
    }
    expect(toTaskResults(parseResultsMessage(sealResults(withdrawal, key), key))).toEqual([
      { task: 'demo/m/3/0', run: 'demo', generation: 1, withdrawn: true, matches: [] },
      { ...message.results[0]!, generation: 2 },
    ])
    for (const bad of [
      { ...message.results[0]!, generation: 0 },
      { ...message.results[0]!, generation: 1.5 },
      { ...message.results[0]!, withdrawn: false },
      { task: 'demo/m/3/0', run: 'demo', matches: [] },
    ]) {
      const sealed = sealResults({ type: 'results', results: [bad] } as ResultsMessage, key)
      expect(() => parseResultsMessage(sealed, key)).toThrow(InvalidMessageError)
    }
  })
})
