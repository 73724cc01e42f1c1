/**
 * Stand-in for `@aws-sdk/credential-provider-node` in the Lambda bundles (see scripts/build-lambdas.mjs):
 * a Lambda's credentials are always in its environment, so only the environment provider is shipped.
 */
import { fromEnv } from "@aws-sdk/credential-provider-env";

export const defaultProvider = () => fromEnv();
