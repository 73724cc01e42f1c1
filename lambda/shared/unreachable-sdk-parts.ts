/**
 * Stand-in for two parts of the AWS SDK that a Lambda never loads (see scripts/build-lambdas.mjs):
 * `bowser` (user agent parsing, only for browsers) and `@smithy/core/event-streams` (only for
 * event-stream operations, which no Lambda here calls). The SDK reaches both through dynamic
 * imports Node never takes, yet esbuild would ship each as a chunk (~47 KiB per Lambda).
 */
function unreachable(what: string): never {
  throw new Error(`${what} is not bundled with the Lambdas (scripts/build-lambdas.mjs)`);
}

/** bowser */
export function parse(): never {
  return unreachable("bowser");
}
export default { parse };

/** @smithy/core/event-streams */
export class EventStreamSerde {
  constructor() {
    unreachable("@smithy/core/event-streams");
  }
}
export function eventStreamSerdeProvider(): never {
  return unreachable("@smithy/core/event-streams");
}
