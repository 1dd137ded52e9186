/**
 * The behavioural suite (suite.ts) over VarMap in every configuration with the noble cipher
 * provider: 24 of the full product of matrix.ts (the other 24 are in var-map.node.test.ts).
 */
import { FACTORIES } from './factories.js';
import { everyConfiguration } from './matrix.js';
import { suite } from './suite.js';

const varMap = FACTORIES.find((factory) => factory.name === 'VarMap')!;
suite(
  varMap,
  varMap.supports,
  everyConfiguration.filter((configuration) => configuration.cipher === 'noble'),
);
