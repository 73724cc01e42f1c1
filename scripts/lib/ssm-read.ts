/**
 * What `doctor` and `status` read of SSM with your credentials: the AMI a launch template resolves at
 * launch (the image pipeline's parameter), and every parameter under a path (the published label
 * configs, which the Lambdas read).
 */
import { isServiceError } from "../../lambda/adapters/aws-json";
import { parameterValue, ssm } from "../../lambda/adapters/ssm";

/** The AMI id the parameter holds; undefined when it is not written yet (no image built). */
export function amiParameterValue(name: string): Promise<string | undefined> {
  return parameterValue(name).catch((error: unknown) => {
    if (isServiceError(error, "ParameterNotFound")) return undefined;
    throw error;
  });
}

/** Every parameter under `path`, by its name below the path. */
export async function parametersUnder(path: string): Promise<Map<string, string | undefined>> {
  const found = new Map<string, string | undefined>();
  let next: string | undefined;
  do {
    const page = await ssm("GetParametersByPath", {
      Path: path,
      Recursive: true,
      MaxResults: 10,
      NextToken: next,
    });
    for (const p of page.Parameters ?? []) found.set(p.Name?.slice(path.length + 1) ?? "", p.Value);
    next = page.NextToken;
  } while (next);
  return found;
}
