# Boot trimming for the runner image (sourced). Inlined into image/components/runner-host.yml at
# render time, whose TrimBoot step installs it in the image and runs trim_boot, and whose test stage
# runs check_boot_trimmed; test/image.test.ts runs both against a fake systemctl.
# A runner boots once, runs one job and terminates. On Ubuntu the user data (the bootstrap) runs in
# cloud-final.service, which is ordered after multi-user.target: every unit started for that target
# delays the job, and every timer that fires later competes with it. docs/performance.md ("Image boot
# trimming") says what each saves and which figures are published.

BOOT_TRIM_ETC=${BOOT_TRIM_ETC:-/etc}

# Masked: never started, whatever asks for them, and a package upgrade cannot re-enable a mask.
# Masking a unit that is not installed only leaves a link to /dev/null, so the list holds across
# image versions.
BOOT_TRIM_MASKED=(
  # apt, Ubuntu Pro and motd chores: the image is rebuilt, never patched in place, and apt-daily
  # holds the dpkg lock that a job's apt-get would wait for.
  apt-daily.timer apt-daily-upgrade.timer apt-daily.service apt-daily-upgrade.service
  unattended-upgrades.service apt-news.service esm-cache.service ua-timer.timer
  ubuntu-advantage.service update-notifier-download.timer update-notifier-motd.timer motd-news.timer
  # Upkeep that a machine living at most a few hours never needs.
  man-db.timer fstrim.timer e2scrub_all.timer e2scrub_reap.service dpkg-db-backup.timer
  fwupd-refresh.timer
  # Hardware an EC2 runner does not have: modems, multipath, iSCSI, LVM volumes.
  ModemManager.service multipathd.service multipathd.socket iscsid.service iscsid.socket
  open-iscsi.service lvm2-monitor.service
  # Crash reports, entropy fetched over the network (EC2 has a hardware RNG), inbound SSH (the
  # security group has no inbound rule).
  apport.service apport-autoreport.path pollinate.service ssh.service ssh.socket
  # snapd's boot-time waits and store calls: the snaps were seeded when the image was built.
  snapd.seeded.service snapd.autoimport.service snapd.snap-repair.timer
)

# Disabled, not masked (where snapd is installed): snapd.socket still starts the daemon for whoever
# asks (the snap command). The SSM agent snap's own unit does not need the daemon, and Image
# Builder's test stage runs through that agent on an instance booted from this image.
BOOT_TRIM_DISABLED=(snapd.service)

# What a runner needs at boot: the trimming must leave these alone (the test phase checks it).
BOOT_TRIM_KEPT=(
  containerd.service docker.service docker.socket
  systemd-networkd.service systemd-networkd-wait-online.service systemd-resolved.service
  cloud-init-local.service cloud-config.service cloud-final.service
  snapd.socket snapd.apparmor.service snap.amazon-ssm-agent.amazon-ssm-agent.service
  hibinit-agent.service
)

# The cloud-init settings file; sorts after Ubuntu's 90_dpkg.cfg, so its datasource list wins.
BOOT_TRIM_CLOUD_CFG=cloud/cloud.cfg.d/99-runner-fleet.cfg

# trim_boot: masks and disables the units above, narrows cloud-init, and holds snap refreshes.
trim_boot() {
  # Snaps change with the image, like apt packages (GitHub's hosted images hold refreshes too). The
  # daemon must answer now, before it is taken off the boot.
  if command -v snap >/dev/null; then
    systemctl start snapd.socket snapd.service
    snap set system refresh.hold=forever
    systemctl disable "${BOOT_TRIM_DISABLED[@]}"
  fi
  systemctl mask "${BOOT_TRIM_MASKED[@]}"
  # The rest of the build runs apt too: stop whatever apt work the timers already started.
  systemctl stop apt-daily.service apt-daily-upgrade.service unattended-upgrades.service || true
  install -d -m 0755 "$BOOT_TRIM_ETC/cloud/cloud.cfg.d"
  cat >"$BOOT_TRIM_ETC/$BOOT_TRIM_CLOUD_CFG" <<'EOF'
# runner-fleet (image/scripts/boot-trim.sh): only EC2's datasource is probed, and no SSH host keys
# are generated at boot (sshd is masked).
datasource_list: [Ec2, None]
ssh_genkeytypes: []
EOF
}

# unit_state UNIT: what `systemctl is-enabled` says (empty for a unit that is not installed).
unit_state() {
  systemctl is-enabled "$1" 2>/dev/null || true
}

# check_boot_trimmed: run on an instance booted from the image; fails listing every unit whose state
# is not the intended one.
check_boot_trimmed() {
  local unit state wrong=()
  for unit in "${BOOT_TRIM_MASKED[@]}"; do
    state=$(unit_state "$unit")
    [[ $state == masked ]] || wrong+=("$unit is ${state:-absent}, not masked")
  done
  for unit in "${BOOT_TRIM_DISABLED[@]}"; do
    state=$(unit_state "$unit")
    [[ $state == disabled || -z $state ]] || wrong+=("$unit is $state, not disabled")
  done
  for unit in "${BOOT_TRIM_KEPT[@]}"; do
    state=$(unit_state "$unit")
    [[ $state != masked* && $state != disabled ]] || wrong+=("$unit is $state: the runner needs it")
  done
  ((${#wrong[@]} == 0)) || {
    printf 'boot trimming: %s\n' "${wrong[@]}" >&2
    return 1
  }
  echo "boot trimming: ${#BOOT_TRIM_MASKED[@]} units masked, ${BOOT_TRIM_DISABLED[*]} disabled"
}
