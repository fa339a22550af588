/**
 * Starts or stops, by hand, the 3-node RabbitMQ cluster the cluster suite uses (see
 * `test/support/cluster.ts` and docs/cluster.md):
 *
 *   npx tsx scripts/cluster.ts start   # nodes on 127.0.0.1:5681-5683; prints AMQP_HOSTS
 *   npx tsx scripts/cluster.ts stop    # stops them and removes /tmp/rxamqp-cluster-5681
 *
 * RXAMQP_CLUSTER_PORT moves the ports, RXAMQP_CLUSTER_DIR the directory. The default broker on 5672 is
 * never touched.
 */
import { startCluster, stopCluster } from '../test/support/cluster.js';

const command = process.argv[2];
if (command === 'start') {
  const cluster = await startCluster({ keepOnExit: true, log: (l) => console.log(`[cluster] ${l}`) });
  console.log(`nodes: ${cluster.nodes.map((n) => `${n.name} ${n.host}`).join(', ')}`);
  console.log(`AMQP_HOSTS=${cluster.hosts.join(',')}`);
  console.log(`AMQP_NODES=${cluster.nodes.map((n) => n.name).join(',')}`);
  console.log(
    `rabbitmqctl: HOME=${cluster.dir} RABBITMQ_CONF_ENV_FILE=${cluster.dir}/rabbitmq-env.conf /usr/lib/rabbitmq/bin/rabbitmqctl -n ${cluster.nodes[0]!.name} cluster_status`,
  );
} else if (command === 'stop') {
  await stopCluster();
  console.log('stopped');
} else {
  console.error('usage: tsx scripts/cluster.ts start|stop');
  process.exitCode = 2;
}
