/**
 * Settings as CLI flags: `--data-dir ./d` sets DATA_DIR, for every setting the config
 * module knows. Anything else is an error that names the flag.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { configSchema, ConfigError, flagToSetting } from '../schemas/config.js';

export const SETTING_FLAGS = Object.keys(configSchema.shape).map((k) => `--${k.toLowerCase().replace(/_/g, '-')}`);

/** Splits argv into settings overrides and the remaining (command-specific) arguments. */
export function takeSettingFlags(argv: string[], extra: readonly string[] = []): { overrides: Record<string, string>; rest: string[] } {
  const overrides: Record<string, string> = {};
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const [flag, inline] = arg.split(/=(.*)/s, 2) as [string, string | undefined];
    if (SETTING_FLAGS.includes(flag)) {
      const value = inline ?? argv[++i];
      if (value === undefined) throw new ConfigError(`${flag} needs a value`);
      overrides[flagToSetting(flag)] = value;
    } else if (arg.startsWith('--') && !extra.includes(flag)) {
      throw new ConfigError(`unknown option ${flag}; see --help`);
    } else {
      rest.push(arg);
    }
  }
  return { overrides, rest };
}

export function settingsHelp(): string {
  return `Settings (flag or environment variable):\n${SETTING_FLAGS.map((f) => `  ${f.padEnd(24)} ${flagToSetting(f)}`).join('\n')}`;
}

/**
 * A command with actions (`dead-letters list`, `quarantine show <id>`…): settings flags,
 * the command's own options, the action and its arguments. `help` is set for --help or
 * when no action is given (exit 0 for --help, 2 without an action).
 */
export function parseActionArgs<O extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: O) {
  const { overrides, rest } = takeSettingFlags(argv, Object.keys(options).map((o) => `--${o}`));
  const { values, positionals } = parseArgs({ args: rest, options, allowPositionals: true, strict: true });
  const [action, ...args] = positionals;
  return { overrides, values, action, args, help: (values as { help?: boolean }).help === true || action === undefined };
}
