// Translate argv[2] from English to Spanish with the DeepL Node client
// library pointed at transgate (TG_URL) with a gateway-issued key (TG_KEY).
// Only the server URL differs from ordinary DeepL use.
'use strict';
const deepl = require('deepl-node');

async function main() {
  const translator = new deepl.Translator(process.env.TG_KEY, {
    serverUrl: process.env.TG_URL,
    maxRetries: 0,
  });
  const result = await translator.translateText(process.argv[2], 'en', 'es');
  process.stdout.write(result.text + '\n');
  const usage = await translator.getUsage();
  if (!usage.character) throw new Error('usage has no character count');
}

main().catch((err) => {
  process.stderr.write(`deepl client failed: ${err.message}\n`);
  process.exit(1);
});
