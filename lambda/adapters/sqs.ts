/**
 * SQS, called over its JSON protocol (aws-json.ts explains why not the SDK client): the launch
 * queue's sends and visibility changes (launch-queue.ts), and the queue depths `npm run doctor` reads.
 * Inputs and outputs are the SDK's types.
 */
import type {
  ChangeMessageVisibilityRequest,
  GetQueueAttributesRequest,
  GetQueueAttributesResult,
  GetQueueUrlRequest,
  GetQueueUrlResult,
  SendMessageBatchRequest,
  SendMessageBatchResult,
} from "@aws-sdk/client-sqs";
import { jsonService } from "./aws-json";

export type SqsOperations = {
  SendMessageBatch: [SendMessageBatchRequest, SendMessageBatchResult];
  ChangeMessageVisibility: [ChangeMessageVisibilityRequest, object];
  GetQueueUrl: [GetQueueUrlRequest, GetQueueUrlResult];
  GetQueueAttributes: [GetQueueAttributesRequest, GetQueueAttributesResult];
};

/** `sqs("SendMessageBatch", input)`: one SQS call. */
export const sqs = jsonService<SqsOperations>({
  signingName: "sqs",
  targetPrefix: "AmazonSQS",
  jsonVersion: "1.0",
  // As the SDK does: error codes as SQS's query API names them.
  headers: { "x-amzn-query-mode": "true" },
});
