/**
 * The vertex kind's defaults, in one place (the core's are in `peer/protocol/defaults.ts`). Public
 * options are `Partial<...>` of these shapes and are merged once with `??`.
 */

/** How a vertex's area is sampled in a camera frame (shared by the CPU and WebGL workers). */
export const samplingDefaults = {
  /** Largest area radius in pixels; bounds the work of one data thread (area is (2r+1)² pixels). */
  maxAreaRadius: 8,
  /**
   * A pixel whose mean brightness (R+G+B)/3 is at or below this share of full scale is background.
   * A little below the 0.19 the Middlebury authors suggest for telling object from their black
   * backdrop: the shaded side of a column is darker than that in some views, and the visual hull would
   * carve it away. Measured leave-one-out on templeSparseRing at 128³ (coverage 0.3): 0.15 → 19.95 dB /
   * IoU 0.849, 0.17 → 19.90 / 0.853, 0.19 → 19.76 / 0.855. A job carries it as the integer
   * `backgroundSum` = round(share · 765).
   */
  backgroundBrightness: 0.17,
  /**
   * The colour's area is never narrower than this radius (3×3 pixels), even where the vertex's
   * footprint is under 2 pixels and its coverage area is one pixel (rule 3 of sampling.ts). One pixel
   * is a point sample of a textured photograph, and the vertex's centre falls anywhere in it (the
   * calibration is good to about a pixel): its colour is as likely a neighbour's. The coverage keeps
   * the footprint's area: widened too, it fattens the hull. Measured with the contract renderer over
   * all 16 held-out views on archesRing at 144³ (a voxel 1.86 pixels wide at the box's centre):
   * 20.336 → 20.469 dB, IoU 0.940 either way (the naive method 18.359 → 18.344); the coverage
   * widened as well, 20.331 dB and IoU 0.931. Grids whose voxels span 2 pixels or more are unchanged.
   */
  minColourRadius: 1,
} as const

/** How the aggregator turns thread results into a frame outcome. */
export const outcomeDefaults = {
  /**
   * A camera sees background through a vertex when less than this share of the vertex's area is
   * foreground. Below one half: a vertex whose centre lies just inside a convex edge or corner is
   * covered a third or a quarter in the views that see that edge on their silhouette. Measured
   * (3×3 areas, so the steps are ninths): 0.5 carves 9 % of the synthetic scene's surface, 0.3 keeps
   * all but 2.5 %; on templeSparseRing 0.5 → 19.41 dB, 0.3 → 19.90 dB.
   */
  minCoverage: 0.3,
  /** How many cameras may see background at a vertex before it is free space (0: a strict visual hull). */
  silhouetteMisses: 0,
  /** Run the occlusion-aware re-vote (visibility from the hull, then colour from the cameras that see the vertex). */
  occlusionAware: true,
  /** Colour classes per channel for the weighting values (votes); 8 gives 512 classes. */
  colourLevels: 8,
  /**
   * Depth tolerance of the visibility test, in voxel sizes: a vertex is visible in a camera when it lies
   * within this distance behind the nearest hull vertex on its pixel. Measured with the contract
   * renderer at 128³ (views 0, 4, 8, 12; solid interior): 0.75 → 19.51 dB, 1.5 → 19.75, 3 → 19.97,
   * 6 → 19.92 on templeSparseRing; 1.5 → 19.75, 3 → 19.87 on archesRing; 19.07 → 19.10 on potsRing.
   * A tolerance of a voxel or so refuses cameras whose view of a surface vertex is grazed by its own
   * neighbours' splats; the mean over more cameras averages out the hull's misplacement.
   */
  visibilityDepthVoxels: 3,
  /**
   * Photo-consistency carving (the seed's standard-deviation rule) is off by default: on templeSparseRing
   * a threshold of 25, 40 or 60 with repeated passes lost 0.05–0.3 dB, and with the solid model and 40
   * passes 25 lost 2 dB and 15 carved into the object (IoU 0.35): the plaster's texture and the grazing
   * views spread the colours of true surface vertices as much as those of phantom ones. On the
   * Lambertian archesRing, 15 gained 0.3 dB.
   */
  maxStd: Number.POSITIVE_INFINITY,
  carvingPasses: 0,
  /** Colour the interior from the surface (an opaque model; see `colourInterior` in outcome.ts). */
  solidInterior: true,
  /**
   * Sub-voxel surface refinement (surface-refinement.ts): surface vertices move within their voxels.
   * Measured with the contract renderer at 128³ over all 16 held-out views: temple +0.21 dB, arches
   * +0.09, pots +0.20; at 144³ (views 0, 4, 8, 12) temple +0.12, arches +0.17, pots +0.14.
   */
  refineSurface: true,
  /**
   * The peel (outcome.ts): after the refinement, a surface vertex whose cameras agree best at the inner
   * edge of its voxel is carved, and visibility, the vote and the refinement run once more, so the
   * vertex behind it takes the surface. It thins the hull where it lies a voxel or two outside a flat
   * face. Measured with the contract renderer at 128³ over all 16 held-out views: arches 20.31 →
   * 20.41 dB, pots 21.08 → 21.37, temple 19.82 → 19.73. `peelSilhouetteRatio` (`DeeperSurfaces` in
   * surface-refinement.ts) keeps it off the silhouettes: without it, the synthetic scene's surface
   * accuracy falls from 95.25 % to 92.26 %, since there a flat colour agrees as well half a voxel in
   * and the backdrop spoils the outer samples; with it, 95.09 %.
   */
  peelSurface: true,
  peelSilhouetteRatio: 3,
  /**
   * Once: twice, archesRing over 16 views at 136³ gains 0.02 dB (20.338 → 20.360) and
   * templeSparseRing at 128³ loses 0.18 (19.73 → 19.55), each further layer peeled there being true
   * surface.
   */
  peelPasses: 1,
  /**
   * The depth sweep (depth-sweep.ts): one pass carves the visual hull's phantoms before the vote.
   * With one pass, at 128³ over all 16 held-out views: temple +2.00 dB over naive, arches +1.65, pots
   * +1.59, IoU within 0.01 of naive on all three. Its cost: job.temple128 1.35× the job without it
   * (the sweep spread over the cores, `SweepThreads`; 1.52× in one thread).
   * Measured with the contract renderer at 128³ (views 0, 4, 8, 12), without → with:
   * templeSparseRing 19.97 → 20.14 dB, archesRing 19.87 → 20.24, potsRing 19.10 → 20.65; IoU
   * +0.003 to +0.004. What each part adds (temple, arches, pots): one vertex's colour alone, 4
   * neighbours: −0.45, +0.44 (it carves into the plaster); with the patch check (ratio 0.3): +0.16,
   * +0.25, +0.78; 8 neighbours, the best 4, 40 voxels deep: as here. A second pass adds nothing.
   */
  sweepPasses: 1,
  depthSweep: {
    neighbours: 8,
    agreeing: 4,
    maxDepthVoxels: 40,
    ratio: 0.3,
    minError: 100,
    patchRatio: 0.3,
    visibleSurface: true,
    /**
     * 2 rather than `agreeing`: measured with the contract renderer at 128³ over all 16 held-out views,
     * arches 20.23 → 20.31 dB, pots 20.87 → 21.08, temple 19.80 → 19.82.
     */
    surfaceViews: 2,
    /**
     * Cross-checked carving (`DepthSweepRule`): a depth at 0.4 of the surface's error, and a patch at
     * half of it, carves where two cameras' rays find it. Measured with the contract renderer over all
     * 16 held-out views, without → with: archesRing at 136³ 20.338 → 20.370 dB, templeSparseRing at
     * 128³ 19.73 → 19.71 (views 0, 4, 8, 12: 20.39 → 20.36). Looser costs the photographed temple
     * more than it gains the generated arches: at 0.5 and 0.7, 20.413 and 19.64 (20.26 on views 0, 4,
     * 8, 12, below the naive method's 18.30 + 2.0); three cameras at 0.7 and 1.0, 20.388 and 19.66;
     * every ray looser, no cross-check (ratio 0.3, patchRatio 0.4), 20.374 and 19.65.
     */
    confirmedRatio: 0.4,
    confirmedPatchRatio: 0.5,
    confirmingCameras: 2,
  },
} as const

/** The partitioner's default block size (vertices per block); the scheduler sizes blocks per participant later. */
export const partitionDefaults = {
  blockVertices: 65_536,
} as const

/** Limits on a vertex task a stranger can send or ask for. */
export const vertexLimits = {
  /** Most vertices in one block: its result, 4 bytes a vertex, is `messageLimits.maxResultBytes`. */
  maxBlockVertices: 4 * 1024 * 1024,
} as const

/** Block sizes the scheduler hands out for a vertex job (its kind's `cost`). */
export const vertexBlockDefaults = {
  /** Smallest and largest block, vertices. */
  minBlockVertices: 4,
  maxBlockVertices: 1 << 20,
  /** First block of a participant whose speed is not known yet: small, so it measures quickly. */
  calibrationVertices: 1024,
} as const
