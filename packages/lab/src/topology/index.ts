export { generateTopology, type TopologyOptions } from './generate-topology.ts';
export { topologySizes, resolveTopologySize, type TopologySize, type TopologySizeName, type TopologyDimensions } from './topology-size.ts';
export { defaultCredentials, defaultImageBase, type TopologyAddresses, type TopologyCredentials } from './endpoints.ts';
export { formatInventory, writeInventoryFile } from './inventory-file.ts';
export { summarizeTopology, formatTopologySummary, type TopologySummary } from './summarize-topology.ts';
