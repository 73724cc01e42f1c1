/**
 * The AMI a label config's launch template resolves at launch: the value of the image pipeline's SSM
 * parameter (`resolve:ssm:` in the template), read with your credentials by `doctor` and `status`.
 */
import { isServiceError } from "../../lambda/adapters/aws-json";
import { parameterValue } from "../../lambda/adapters/ssm";

/** The AMI id the parameter holds; undefined when it is not written yet (no image built). */
export function amiParameterValue(name: string): Promise<string | undefined> {
  return parameterValue(name).catch((error: unknown) => {
    if (isServiceError(error, "ParameterNotFound")) return undefined;
    throw error;
  });
}
