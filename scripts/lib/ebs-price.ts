/**
 * What a stopped pool member costs while it waits: its root volume, gp3, billed per GB-month of
 * provisioned storage whether the instance runs or not (a stopped instance's compute is free). Pure.
 *
 * List prices in USD from AWS's EBS pricing page (https://aws.amazon.com/ebs/pricing/, "General
 * Purpose SSD (gp3) - Storage"), 2026. gp3 storage is 80 % of gp2's in every region listed; stored
 * copies of third-party tables agree for us-east-1/2, us-west-2 ($0.08), eu-west-1 ($0.088),
 * eu-central-1 ($0.0952), eu-south-1 ($0.0924), eu-north-1 ($0.0836) and ap-southeast-2 ($0.096).
 * A region not in the table is priced as us-east-1 and flagged as an estimate: AWS changes prices
 * rarely, but a wrong figure must not look exact.
 */

export const GP3_USD_PER_GB_MONTH: Readonly<Record<string, number>> = {
  "us-east-1": 0.08,
  "us-east-2": 0.08,
  "us-west-1": 0.096,
  "us-west-2": 0.08,
  "ca-central-1": 0.088,
  "sa-east-1": 0.152,
  "eu-west-1": 0.088,
  "eu-west-2": 0.0928,
  "eu-west-3": 0.0928,
  "eu-central-1": 0.0952,
  "eu-south-1": 0.0924,
  "eu-north-1": 0.0836,
  "ap-south-1": 0.0912,
  "ap-northeast-1": 0.096,
  "ap-northeast-2": 0.0912,
  "ap-northeast-3": 0.096,
  "ap-southeast-1": 0.096,
  "ap-southeast-2": 0.096,
};

const FALLBACK_REGION = "us-east-1";

export interface Gp3Price {
  region: string;
  usdPerGbMonth: number;
  /** The region is not in the table: us-east-1's price stands in. */
  estimate: boolean;
}

export function gp3PriceOf(region: string): Gp3Price {
  const known = GP3_USD_PER_GB_MONTH[region];
  if (known !== undefined) return { region, usdPerGbMonth: known, estimate: false };
  return { region, usdPerGbMonth: GP3_USD_PER_GB_MONTH[FALLBACK_REGION]!, estimate: true };
}

/** Dollars a month for `volumes` gp3 volumes of `sizeGb` each, to the cent. */
export function monthlyGp3Cost(volumes: number, sizeGb: number, price: Gp3Price): number {
  return Math.round(volumes * sizeGb * price.usdPerGbMonth * 100) / 100;
}

/** `$8.00`, or `$0.0952` for a per-GB price (as many decimals as it has, at least two). */
export function formatUsd(amount: number): string {
  const text = String(amount);
  const decimals = Math.max(2, text.includes(".") ? text.split(".")[1]!.length : 0);
  return `$${amount.toFixed(decimals)}`;
}

/** How the price was found, for the line that shows it. */
export function describePrice(price: Gp3Price): string {
  const per = `${formatUsd(price.usdPerGbMonth)}/GB-month`;
  return price.estimate
    ? `${per} (estimate: ${price.region} is not in the price table, us-east-1's price stands in)`
    : `${per} in ${price.region}`;
}
