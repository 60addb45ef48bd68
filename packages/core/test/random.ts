import { createRandom } from "../src/index.js";

/** A seeded integer in [low, high]. */
export function randomInteger(random: () => number, low: number, high: number): number {
  return low + Math.floor(random() * (high - low + 1));
}

/** Random valid configs (W a multiple of G), seeded so failures reproduce. */
export function randomConfigs(seed: number, count: number) {
  const random = createRandom(seed);
  return Array.from({ length: count }, () => {
    const groupSize = randomInteger(random, 1, 16);
    const neighborWindow = groupSize * randomInteger(random, 1, 12);
    return { groupSize, neighborWindow, length: randomInteger(random, 1, 200) };
  });
}
