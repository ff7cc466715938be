import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadMiddlebury, parseBox, parseParFile, parseReadmeBox } from '../../peer/datasets/middlebury.ts'
import { projectionMatrix } from '../../peer/jobs/vertex/camera.ts'
import { templeDir } from '../support/fixtures.ts'

describe('Middlebury loader', () => {
  it('loads templeSparseRing: 16 calibrated 640×480 cameras and the README box', async () => {
    const set = await loadMiddlebury(templeDir)
    expect(set.name).toBe('templeSR')
    expect(set.cameras).toHaveLength(16)
    expect(set.cameras.every((c) => c.width === 640 && c.height === 480)).toBe(true)
    expect(set.cameras[0]!.name).toBe('templeSR0001')
    expect(set.box.min).toEqual([-0.073568, 0.021728, -0.012445])
    expect(set.box.max).toEqual([0.028855, 0.181892, 0.062736])
    expect(set.frames[3]!.imageUrl).toMatch(/^file:.*templeSR0004\.png$/)
    // The box centre projects inside every image and in front of every camera.
    const c = [-0.0224, 0.1018, 0.0251]
    for (const camera of set.cameras) {
      const p = projectionMatrix(camera)
      const w = p[8]! * c[0]! + p[9]! * c[1]! + p[10]! * c[2]! + p[11]!
      const u = (p[0]! * c[0]! + p[1]! * c[1]! + p[2]! * c[2]! + p[3]!) / w
      const v = (p[4]! * c[0]! + p[5]! * c[1]! + p[6]! * c[2]! + p[7]!) / w
      expect(w).toBeGreaterThan(0)
      expect(u).toBeGreaterThan(0)
      expect(u).toBeLessThan(640)
      expect(v).toBeGreaterThan(0)
      expect(v).toBeLessThan(480)
    }
  })

  it('takes the box from --bbox when given', async () => {
    const set = await loadMiddlebury(templeDir, { box: parseBox('-1,-1,-1,1,1,1') })
    expect(set.box).toEqual({ min: [-1, -1, -1], max: [1, 1, 1] })
  })

  it('names the line of a malformed camera file', () => {
    expect(() => parseParFile('x')).toThrow(/first line/)
    expect(() => parseParFile('2\na.png 1 2 3')).toThrow(/announces 2 images/)
    expect(() => parseParFile('1\na.png 1 2 3')).toThrow(/line 2: expected 22 fields/)
    expect(() => parseParFile(`1\na.png ${'1 '.repeat(20)}x`)).toThrow(/line 2: a field is not a number/)
  })

  it('refuses malformed boxes and data set folders clearly', async () => {
    expect(() => parseBox('1,2,3')).toThrow(expect.objectContaining({ name: 'DatasetError' }))
    expect(() => parseBox('0,0,0,0,1,1')).toThrow(/min must be below/)
    expect(() => parseReadmeBox('no box here')).toThrow(/--bbox/)
    const empty = await mkdtemp(join(tmpdir(), 'crowdmesh-set-'))
    await expect(loadMiddlebury(empty)).rejects.toThrow(/_par.txt/)
    await expect(loadMiddlebury(join(empty, 'missing'))).rejects.toThrow(
      expect.objectContaining({ name: 'DatasetError' }),
    )
    await writeFile(join(empty, 'x_par.txt'), `1\nx.png ${'1 '.repeat(21)}`)
    await expect(loadMiddlebury(empty)).rejects.toThrow(/cannot read image/)
  })
})
