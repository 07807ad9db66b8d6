// ESLint flat config: typescript-eslint rules plus AVP's import-boundary rule.
//
// Layers (DESIGN.md) may import only the layers listed for them. A file in src/<layer>/ that imports
// a path through any other layer folder fails lint with a message naming both layers.
import tseslint from 'typescript-eslint';
import { LAYERS, forbiddenLayerPatterns } from './scripts/layers.mjs';

const boundaryConfigs = Object.keys(LAYERS).map((layer) => ({
  files: [`src/${layer}/**/*.ts`],
  rules: {
    'no-restricted-imports': ['error', { patterns: forbiddenLayerPatterns(layer) }],
  },
}));

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.cache/**', 'tmp/**'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  ...boundaryConfigs,
);
