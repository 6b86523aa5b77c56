// One-shot replica-set bootstrap, run by the compose service `mongo-init`:
//   mongosh "mongodb://mongo:27017/?directConnection=true" /deploy/init-replica-set.js
// Turns the single mongod (started with --replSet rs0) into the replica set rs0 the first
// time, does nothing on later runs, and exits 0 only once this node is PRIMARY.
// The member is announced as MONGO_RS_MEMBER (default mongo:27017): the address clients on
// the compose network use, since drivers connect to the hosts the replica set advertises.

const member =
  (typeof process !== "undefined" && process.env.MONGO_RS_MEMBER) || "mongo:27017";

function initiated() {
  try {
    rs.status();
    return true;
  } catch (e) {
    if (e.codeName === "NotYetInitialized" || e.code === 94) return false;
    throw e;
  }
}

if (initiated()) {
  print(`replica set ${rs.conf()._id} already initiated; nothing to do`);
} else {
  try {
    rs.initiate({ _id: "rs0", members: [{ _id: 0, host: member }] });
    print(`replica set rs0 initiated with member ${member}`);
  } catch (e) {
    // another mongo-init run got there first
    if (e.codeName !== "AlreadyInitialized" && e.code !== 23) throw e;
  }
}

for (let i = 0; i < 60; i++) {
  if (db.hello().isWritablePrimary) {
    print("rs0: this node is PRIMARY");
    quit(0);
  }
  sleep(1000);
}
print("rs0: no PRIMARY after 60 s");
quit(1);
