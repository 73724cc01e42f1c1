/**
 * The process's one DynamoDB client, created on first use. Its endpoint follows the SDK's own
 * AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_DYNAMODB variables (how the sandbox is reached in tests).
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";

let client: DynamoDBClient | undefined;

export function dynamoClient(): DynamoDBClient {
  client ??= new DynamoDBClient({});
  return client;
}
