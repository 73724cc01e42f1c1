/**
 * EC2 instances: the fleet request, termination and the stack's instances, through the client of
 * ec2-client.ts. The SDK's own retries (throttling, 5xx, network) resend a CreateFleet with the same
 * ClientToken, so a retry can never launch a second fleet.
 */
import {
  CreateFleetCommand,
  type CreateFleetCommandInput,
  DescribeInstancesCommand,
  type Filter,
  StartInstancesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
} from "@aws-sdk/client-ec2";
import { type FleetResult, readFleetResult } from "../core/fleet-request";
import { TAGS } from "../core/stack-identity";
import { ec2Client } from "./ec2-client";

/** Runs one `instant` CreateFleet and returns its instances and per-override errors. */
export async function createFleet(
  input: CreateFleetCommandInput,
): Promise<FleetResult & { fleetId?: string }> {
  const output = await ec2Client().send(new CreateFleetCommand(input));
  return { ...readFleetResult(output), fleetId: output.FleetId };
}

/** Terminates instances (1,000 ids per call, the API's maximum). */
export async function terminateInstances(instanceIds: string[]): Promise<void> {
  for (let start = 0; start < instanceIds.length; start += 1000) {
    const chunk = instanceIds.slice(start, start + 1000);
    await ec2Client().send(new TerminateInstancesCommand({ InstanceIds: chunk }));
  }
}

/**
 * Starts one stopped pool member. One instance per call: StartInstances fails as a whole when any
 * instance cannot start, and each member's start decides its own job's path.
 */
export async function startInstance(instanceId: string): Promise<void> {
  await ec2Client().send(new StartInstancesCommand({ InstanceIds: [instanceId] }));
}

/** Stops pool members after their warm-up (1,000 ids per call). */
export async function stopInstances(instanceIds: string[]): Promise<void> {
  for (let start = 0; start < instanceIds.length; start += 1000) {
    const chunk = instanceIds.slice(start, start + 1000);
    await ec2Client().send(new StopInstancesCommand({ InstanceIds: chunk }));
  }
}

/**
 * Availability zones of just-launched instances (CreateFleet answers with subnets only). Filters
 * by id instead of naming the ids, so an instance not yet visible is missing rather than an error.
 */
export async function instanceZones(instanceIds: string[]): Promise<Map<string, string>> {
  const zones = new Map<string, string>();
  for (let start = 0; start < instanceIds.length; start += 200) {
    const chunk = instanceIds.slice(start, start + 200);
    let nextToken: string | undefined;
    do {
      const page = await ec2Client().send(
        new DescribeInstancesCommand({
          Filters: [{ Name: "instance-id", Values: chunk }],
          NextToken: nextToken,
        }),
      );
      for (const reservation of page.Reservations ?? []) {
        for (const instance of reservation.Instances ?? []) {
          const zone = instance.Placement?.AvailabilityZone;
          if (instance.InstanceId && zone) zones.set(instance.InstanceId, zone);
        }
      }
      nextToken = page.NextToken;
    } while (nextToken);
  }
  return zones;
}

export interface RunnerInstance {
  instanceId: string;
  state?: string;
  launchTime?: Date;
  configName?: string;
  imageId?: string;
  /** The config whose stopped pool it belongs to (TAGS.poolMember), if it is a pool member. */
  poolConfig?: string;
}

/** The stack's instances (tagged `runner-fleet:stack` = `stackName`) in the given states, all pages. */
export async function describeRunnerInstances(
  stackName: string,
  states: string[],
): Promise<RunnerInstance[]> {
  const filters: Filter[] = [
    { Name: `tag:${TAGS.stack}`, Values: [stackName] },
    { Name: "instance-state-name", Values: states },
  ];
  const instances: RunnerInstance[] = [];
  let nextToken: string | undefined;
  do {
    const page = await ec2Client().send(
      new DescribeInstancesCommand({ Filters: filters, NextToken: nextToken, MaxResults: 1000 }),
    );
    for (const reservation of page.Reservations ?? []) {
      for (const instance of reservation.Instances ?? []) {
        if (!instance.InstanceId) continue;
        instances.push({
          instanceId: instance.InstanceId,
          state: instance.State?.Name,
          launchTime: instance.LaunchTime,
          configName: instance.Tags?.find((t) => t.Key === TAGS.config)?.Value,
          imageId: instance.ImageId,
          poolConfig: instance.Tags?.find((t) => t.Key === TAGS.poolMember)?.Value,
        });
      }
    }
    nextToken = page.NextToken;
  } while (nextToken);
  return instances;
}
