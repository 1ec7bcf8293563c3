"""A fitted model's member as a TF1 graph again: the independent reference for predict."""

import tensorflow as tf

import mdn_tf

tf1 = tf.compat.v1


def member_graph(fitted, member=0):
    """(session, MDN): ``network_graph(fitted.network)`` in a graph of its own, holding the
    weights of ``fitted``'s member; close the session when done."""
    graph = tf.Graph()
    with graph.as_default():
        mdn = mdn_tf.graph.network_graph(fitted.network)
        sess = tf1.Session(graph=graph)
        sess.run(tf1.global_variables_initializer())
        weights = [w for layer in mdn.layers for w in layer]
        for variable, value in zip(weights, fitted.weights[member]):
            variable.load(value, sess)
    return sess, mdn
