/**
 * A second build entry for the page's import map. runtime.ts loads tfjs's webgpu backend with
 * `import(specifier)` on a variable, which no bundler rewrites, so the browser itself must resolve
 * the bare name `@tensorflow/tfjs-backend-webgpu`: index.html maps it to this entry's output,
 * which shares its tfjs-core chunk with the page.
 */
export * from '@tensorflow/tfjs-backend-webgpu';
