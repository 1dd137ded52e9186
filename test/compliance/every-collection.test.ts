/**
 * The behavioural suite (suite.ts) over every collection class but VarMap: VarTree, ConstMap,
 * ConstTree, TypedMap and TypedTree, each over the pairwise cover of matrix.ts (8 configurations
 * covering every pair of shards, cache, cipher, encryption and fresh/reopened). VarMap runs the full
 * product in var-map.node.test.ts and var-map.noble.test.ts.
 */
import { FACTORIES } from './factories.js';
import { pairwiseConfigurations } from './matrix.js';
import { suite } from './suite.js';

for (const factory of FACTORIES) {
  if (factory.name !== 'VarMap') suite(factory, factory.supports, pairwiseConfigurations);
}
