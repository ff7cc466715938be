import { describe, expect, it } from 'vitest'
import { CapabilityMeter, dutyCyclePauseMs } from '../../peer/participant/capability-meter.ts'
import { parseCapability } from '../../peer/protocol/capability.ts'

describe('capability meter', () => {
  it('measures throughput at the duty cycle, round trip and bandwidth, smoothed', () => {
    const meter = new CapabilityMeter({ cores: 8, dutyCycle: 0.25, smoothing: 0.5 })
    expect(meter.current().threadsPerSec).toBe(0)
    meter.recordBlock(1000, 100) // 10,000 threads/s flat out, 2,500 at a quarter of the time
    expect(meter.current().threadsPerSec).toBe(2500)
    meter.recordBlock(1000, 200)
    expect(meter.current().threadsPerSec).toBe(1875)
    meter.recordRoundTrip(40)
    meter.recordRoundTrip(80)
    meter.recordUpload(1_000_000, 1000)
    expect(meter.current()).toMatchObject({
      cores: 8,
      rttMs: 60,
      bandwidthBytesPerSec: 1_000_000,
      dutyCycle: 0.25,
    })
    // What it states passes the coordinator's schema.
    expect(parseCapability(meter.current())).toEqual(meter.current())
  })

  it('pauses so that busy / (busy + idle) equals the duty cycle', () => {
    expect(dutyCyclePauseMs(100, 0.25)).toBe(300)
    expect(dutyCyclePauseMs(100, 1)).toBe(0)
  })

  it('rejects a stated capability that makes no sense, naming the field', () => {
    const bad = { cores: 0, threadsPerSec: 1, bandwidthBytesPerSec: 0, rttMs: 0, dutyCycle: 1 }
    expect(() => parseCapability(bad)).toThrow(expect.objectContaining({ field: 'cores' }))
    expect(() => parseCapability({ ...bad, cores: 1, dutyCycle: 0 })).toThrow(
      expect.objectContaining({ field: 'dutyCycle' }),
    )
  })
})
