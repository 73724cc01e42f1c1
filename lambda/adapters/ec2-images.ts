/**
 * The stack's AMIs and snapshots (built by the image pipeline, outside the program's state) and the
 * SSM parameters Image Builder wrote their ids to: listed by the stack tag, and removed on destroy.
 */
import {
  DeleteSnapshotCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
  DescribeSnapshotsCommand,
} from "@aws-sdk/client-ec2";
import { TAGS } from "../core/stack-identity";
import type { ImageInfo } from "../core/teardown";
import { isServiceError } from "./aws-json";
import { ec2Client, ec2ErrorCode } from "./ec2-client";
import { ssm } from "./ssm";

const stackFilter = (stackName: string) => [{ Name: `tag:${TAGS.stack}`, Values: [stackName] }];

/** This account's images tagged with the stack, with the snapshots behind them. */
export async function describeStackImages(stackName: string): Promise<ImageInfo[]> {
  const images: ImageInfo[] = [];
  let nextToken: string | undefined;
  do {
    const page = await ec2Client().send(
      new DescribeImagesCommand({ Owners: ["self"], Filters: stackFilter(stackName), NextToken: nextToken }),
    );
    for (const image of page.Images ?? []) {
      if (!image.ImageId) continue;
      images.push({
        imageId: image.ImageId,
        tags: Object.fromEntries((image.Tags ?? []).map((t) => [t.Key ?? "", t.Value ?? ""])),
        snapshotIds: (image.BlockDeviceMappings ?? []).flatMap((m) =>
          m.Ebs?.SnapshotId ? [m.Ebs.SnapshotId] : [],
        ),
      });
    }
    nextToken = page.NextToken;
  } while (nextToken);
  return images;
}

/** This account's snapshots tagged with the stack. */
export async function describeStackSnapshotIds(stackName: string): Promise<string[]> {
  const ids: string[] = [];
  let nextToken: string | undefined;
  do {
    const page = await ec2Client().send(
      new DescribeSnapshotsCommand({
        OwnerIds: ["self"],
        Filters: stackFilter(stackName),
        NextToken: nextToken,
      }),
    );
    for (const snapshot of page.Snapshots ?? []) if (snapshot.SnapshotId) ids.push(snapshot.SnapshotId);
    nextToken = page.NextToken;
  } while (nextToken);
  return ids;
}

const gone = (error: unknown, ...codes: string[]) => codes.includes(ec2ErrorCode(error) ?? "");

export async function deregisterImage(imageId: string): Promise<void> {
  try {
    await ec2Client().send(new DeregisterImageCommand({ ImageId: imageId }));
  } catch (error) {
    if (!gone(error, "InvalidAMIID.NotFound", "InvalidAMIID.Unavailable")) throw error;
  }
}

export async function deleteSnapshot(snapshotId: string): Promise<void> {
  try {
    await ec2Client().send(new DeleteSnapshotCommand({ SnapshotId: snapshotId }));
  } catch (error) {
    if (!gone(error, "InvalidSnapshot.NotFound")) throw error;
  }
}

/** Deletes an SSM parameter; one that does not exist is fine. */
export async function deleteParameter(name: string): Promise<boolean> {
  try {
    await ssm("DeleteParameter", { Name: name });
    return true;
  } catch (error) {
    if (isServiceError(error, "ParameterNotFound")) return false;
    throw error;
  }
}
