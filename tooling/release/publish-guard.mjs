// `prepublishOnly` of every published package: refuse `npm publish`, which would ship pnpm's
// `workspace:^` dependency ranges verbatim (uninstallable). Publish with `pnpm release`
// (changeset publish → pnpm publish, which rewrites them to the real versions).
// npm sets `npm_command=publish` and its own `npm_execpath` for lifecycle scripts even when an
// outer pnpm left `npm_config_user_agent` saying pnpm; pnpm sets neither.
const agent = process.env.npm_config_user_agent ?? '';
const byNpm = process.env.npm_command === 'publish' || /npm-cli\.js$/.test(process.env.npm_execpath ?? '') || !agent.startsWith('pnpm/');
if (byNpm) {
  console.error("refusing to publish with npm: it would ship workspace: ranges. Run `pnpm release` from the repository root.");
  process.exit(1);
}
