/** Argument parsers and checks shared by the commands: wrong input is a one-line error before any call. */
import { InvalidArgumentError } from 'commander';
import { isValidName, parseVersion } from '../functions/core/names';
import { CliError } from './io';

export function intArg(name: string, min: number, max: number) {
  return (raw: string): number => {
    const n = Number(raw);
    if (!/^-?\d+$/.test(raw.trim()) || n < min || n > max)
      throw new InvalidArgumentError(`${name} must be an integer ${min}–${max}`);
    return n;
  };
}

export function numArg(name: string) {
  return (raw: string): number => {
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`${name} must be a number`);
    return n;
  };
}

export const list = (raw: string) =>
  raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

export function assertSpace(space: string): void {
  if (!isValidName(space))
    throw new CliError(
      `invalid space name ${JSON.stringify(space)}`,
      'space names use a-z, 0-9, - and _ (e.g. music)',
    );
}

export function assertVersionArg(v: string): void {
  if (parseVersion(v) === undefined)
    throw new CliError(
      `invalid version ${JSON.stringify(v)}`,
      'versions look like v1, v12: see `vicinity versions <space>`',
    );
}

export const enc = encodeURIComponent;
