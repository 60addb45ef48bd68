/**
 * Version of the export format. Bump it whenever a graph would differ for the same model and
 * settings: the export cache keys on it, so old exports are rebuilt instead of being reused.
 */
export const exporterVersion = "5";
