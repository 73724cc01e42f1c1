/**
 * What a failed start of a stopped pool member means for the member, pure. Its job takes the cold
 * path either way; the member is given back (`unclaim`: ready for a later job) only when EC2 said
 * "not now" (no capacity for the type in its zone, or throttling), since then the instance did not
 * start and is as good as before. Anything else (the instance is gone, in a state it cannot start
 * from, or an answer that leaves unknown whether it started) `retire`s it: the reconciler terminates it.
 */
import { classifyFleetError } from "./spot-fallback";

export type AfterStartFailure = "unclaim" | "retire";

/** `code`: the EC2 error code of the failed StartInstances (undefined: no answer, e.g. a network error). */
export function afterStartFailure(code: string | undefined): AfterStartFailure {
  const failure = classifyFleetError(code);
  return failure === "capacity" || failure === "throttled" ? "unclaim" : "retire";
}
