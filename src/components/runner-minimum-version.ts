/**
 * The oldest Actions runner GitHub lets register (and the image build accepts). Its own module, free
 * of file reads, so `npm run doctor` (bundled as ESM, without `__dirname`) asks the same constant as
 * the image recipe (runner-bootstrap.ts) instead of keeping a copy.
 */
export const MINIMUM_RUNNER_VERSION = "2.329.0";
