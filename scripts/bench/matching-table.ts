import { fingerprintFormat } from '../../peer/jobs/match/format.ts'
import { type MatchingBenchReport, matchingTargets } from './matching.ts'

/* The matching section's printed table (`crowdmesh bench`). */

/** The matching section of `crowdmesh bench`'s printed table. */
export function matchingTable(report: MatchingBenchReport): string {
  const mark = (ok: boolean) => (ok ? 'meets' : 'MISSES')
  const { fingerprint: fp, bruteForce: bf, corpus, layouts, chosen } = report
  const n = (x: number) => x.toLocaleString('en-US')
  const lines: string[] = []
  if (fp !== undefined)
    lines.push(
      `  matching.fingerprintFramesPerSecPerCore  ` +
        (fp.framesPerCpuSecond === undefined
          ? `${fp.framesPerWallSecond} frames/s (wall)`
          : `${fp.framesPerCpuSecond} frames per CPU-second with ffmpeg decoding (ffmpeg ${Math.round(
              fp.decodeCpuShare! * 100,
            )} % of it; ${fp.framesPerWallSecond} frames/s wall)`) +
        `, ${fp.framesPerSecExcludingDecode} without decoding (${fp.video}, ${fingerprintFormat.sampleFps} fps sampled, every phase)`,
    )
  else
    lines.push(
      '  matching.fingerprintFramesPerSecPerCore  not measured: the video-matching samples are missing',
    )
  lines.push(
    `  matching.bruteForcePairsPerSecPerCore    ${(bf.pairsPerSecPerCore / 1e6).toFixed(1)} M/s at the ${corpus.threshold}-bit threshold, ` +
      `${(bf.fullDistancePairsPerSecPerCore / 1e6).toFixed(1)} M/s full distance  ` +
      `(${mark(bf.pairsPerSecPerCore >= matchingTargets.bruteForcePairsPerSecPerCore)} ≥ 20 M)`,
    `  matching.lsh  ${n(corpus.references)} references (${corpus.realReferences} real), ${n(corpus.queries)} queries: ` +
      `${n(corpus.planted)} planted at 0–${corpus.maxPlantedDistance} bits, ${corpus.real} real, ${n(corpus.unrelated)} unrelated; ` +
      `brute force ${bf.msPerQuery.toFixed(1)} ms a query over ${bf.sampleQueries} of them (${bf.pairsFound} pairs within the threshold, ` +
      `${bf.pairsNotKnown} not planted or real); times are CPU time`,
  )
  const buckets = layouts[0]?.recallByDistance ?? []
  lines.push(
    `    layout     build  cand./query  query ms  speed-up  recall  (real)   by planted distance ${buckets
      .map((b) => `${b.from}–${b.to}`)
      .join(' ')}`,
  )
  for (const l of layouts)
    lines.push(
      `    ${l.name.padEnd(9)} ${l.buildSeconds.toFixed(1).padStart(5)} s ${n(l.candidatesPerQuery).padStart(11)} ` +
        `${l.queryMs.toFixed(3).padStart(9)} ${`${Math.round(l.speedup)}×`.padStart(9)}  ${l.recall.toFixed(4)}  ` +
        `(${l.recallReal?.toFixed(3) ?? '–'})  ${l.recallByDistance.map((b) => b.recall.toFixed(3)).join(' ')}` +
        (l.queriesRun < corpus.queries
          ? `  [${n(l.queriesRun)} queries in its time; speed-up over ${l.speedupQueries}]`
          : ''),
    )
  lines.push(
    `  matching.lsh.chosen  ${chosen.name}: recall ${chosen.recall.toFixed(4)} (${mark(chosen.meetsRecall)} ≥ 0.99), ` +
      `${Math.round(chosen.speedup)}× brute force (${mark(chosen.speedup >= matchingTargets.speedup)} ≥ 50×)`,
  )
  return `${lines.join('\n')}\n`
}
