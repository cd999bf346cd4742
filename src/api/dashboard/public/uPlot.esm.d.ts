// uPlot.esm.js is served from node_modules/uplot/dist (src/api/dashboard/index.ts); its types come from the package.
export { default } from 'uplot';
