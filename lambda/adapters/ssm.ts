/**
 * SSM Parameter Store, called over its JSON protocol (aws-json.ts explains why not the SDK client):
 * secrets (ssm-secrets.ts), label configs, image parameters. Inputs and outputs are the SDK's types.
 */
import type {
  DeleteParameterRequest,
  DeleteParameterResult,
  GetParameterRequest,
  GetParameterResult,
  GetParametersByPathRequest,
  GetParametersByPathResult,
} from "@aws-sdk/client-ssm";
import { jsonService } from "./aws-json";

export type SsmOperations = {
  GetParameter: [GetParameterRequest, GetParameterResult];
  GetParametersByPath: [GetParametersByPathRequest, GetParametersByPathResult];
  DeleteParameter: [DeleteParameterRequest, DeleteParameterResult];
};

/** `ssm("GetParameter", input)`: one SSM call. */
export const ssm = jsonService<SsmOperations>({
  signingName: "ssm",
  targetPrefix: "AmazonSSM",
  jsonVersion: "1.1",
});

/** A plain parameter's value (e.g. the AMI id the image pipeline last wrote), undefined if it has none. */
export async function parameterValue(name: string): Promise<string | undefined> {
  const { Parameter } = await ssm("GetParameter", { Name: name });
  return Parameter?.Value;
}
