// `prepublishOnly` of every published package: refuse `npm publish`, which would ship pnpm's
// `workspace:^` dependency ranges verbatim (uninstallable). Publish with `pnpm release`
// (changeset publish → pnpm publish, which rewrites them to the real versions).
const agent = process.env.npm_config_user_agent ?? '';
if (!agent.startsWith('pnpm/')) {
  console.error(`refusing to publish with '${agent.split(' ')[0] || 'an unknown client'}': it would ship workspace: ranges. Run \`pnpm release\` from the repository root.`);
  process.exit(1);
}
