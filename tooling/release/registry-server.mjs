// Runs verdaccio for the release rehearsal (src/registry.ts starts it):
//   node registry-server.mjs <config.yaml> <port>
// Listens on 127.0.0.1 only, and exits when its parent goes away (its stdin, a pipe from the
// parent, closes), so even a rehearsal killed with SIGKILL leaves no registry behind.
import { createRequire } from 'node:module';

const [config, port] = process.argv.slice(2);
const { runServer } = createRequire(import.meta.url)('verdaccio');
const server = await runServer(config);
server.listen(Number(port), '127.0.0.1', () => console.log(`listening on http://127.0.0.1:${port}/`));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
